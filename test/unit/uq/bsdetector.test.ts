// BSDetector: the confidence formula by hand, and on the shipped world base, a known fact's true
// answer is confident while a wrong one is not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { Rng } from '../../../src/tensor/rng.ts';
import {
  bsdetectorConfidence,
  choiceTokenIds,
  observedConsistency,
  reflectionPrompts,
  reflectionScore,
  scorePair,
} from '../../../src/uq/bsdetector.ts';
import { openWorldBase, shippedWorldBaseDir } from '../../../src/world/base.ts';
import { wrongValue } from '../../../src/world/corrupt.ts';
import type { Relation } from '../../../src/world/generate.ts';
import { renderEvalSplit } from '../../../src/world/render.ts';

describe('BSDetector formula', () => {
  it('matches a hand-computed score', () => {
    // per sample alpha * normalised + (1 - alpha) * exact, alpha 0.8:
    // 'Lunde' 1, 'lunde' 0.8, 'Brenn' 0, ' Lunde ' 1 (trimmed), 'The Lunde.' 0.8 -> O = 3.6 / 5 = 0.72
    const O = observedConsistency('Lunde', ['Lunde', 'lunde', 'Brenn', ' Lunde ', 'The Lunde.'], 0.8);
    assert.ok(Math.abs(O - 0.72) < 1e-12, `O = ${O}`);
    // S = (1 * 0.5 + 0 * 0.3 + 0.5 * 0.2) / 1 = 0.6, whatever the scale of the probabilities
    const S = reflectionScore({ correct: 0.5, incorrect: 0.3, unsure: 0.2 });
    assert.ok(Math.abs(S - 0.6) < 1e-12);
    assert.ok(Math.abs(reflectionScore({ correct: 5, incorrect: 3, unsure: 2 }) - 0.6) < 1e-12);
    // C = 0.7 * 0.72 + 0.3 * 0.6 = 0.684
    assert.ok(Math.abs(bsdetectorConfidence(O, S, 0.7) - 0.684) < 1e-12);
    assert.equal(bsdetectorConfidence(O, null, 0.7), O);
    // alpha 0: exact match only
    assert.ok(Math.abs(observedConsistency('Lunde', ['lunde', 'Lunde'], 0) - 0.5) < 1e-12);
  });

  it('rejects weights outside 0..1 and empty samples', () => {
    assert.throws(() => observedConsistency('a', ['a'], 1.5), UsageError);
    assert.throws(() => bsdetectorConfidence(0.5, 0.5, -0.1), UsageError);
    assert.throws(() => observedConsistency('a', []), /at least one sample/);
    assert.throws(() => reflectionScore({ correct: 0, incorrect: 0, unsure: 0 }), /no probability mass/);
  });

  it("asks the paper's two reflection questions, each ending in answer:", () => {
    const [first, second] = reflectionPrompts('Q: Where was X born?\nA:', ' Lunde');
    assert.match(
      first,
      /Proposed Answer: Lunde Is the proposed answer: \(A\) Correct \(B\) Incorrect \(C\) I am not sure\. answer:$/,
    );
    assert.match(second, /Are you really sure the proposed answer is correct\? Choose again:/);
  });
});

describe('BSDetector on the small world base', () => {
  const dir = shippedWorldBaseDir('small');
  const { world } = openWorldBase(dir);
  const loaded = loadModel(dir);
  const tokenizer = loaded.tokenizer!;
  const records = renderEvalSplit(world, 'known').slice(0, 2);

  it('gives a known fact confidence and a wrong answer none; the model answer is the fact', () => {
    const rng = new Rng(3);
    records.forEach((r, i) => {
      const person = world.people.find((p) => p.name === r.entity)!;
      const wrong = wrongValue(world, person, r.relation as Relation, rng);
      const opts = { eosTokenIds: loaded.eosTokenIds, k: 4, seed: 7 };
      const right = scorePair(loaded.model, tokenizer, r.prompt, r.answer, opts, i);
      const bad = scorePair(loaded.model, tokenizer, r.prompt, wrong, opts, i);
      assert.equal(right.samples.length, 4);
      assert.equal(right.modelAnswer, r.answer);
      assert.equal(bad.modelAnswer, r.answer);
      assert.ok(right.confidence > bad.confidence, `${right.confidence} vs ${bad.confidence}`);
      assert.equal(bad.consistency, 0, 'no sample says the wrong value');
      // the model's own answer is scored on its own: the same as the true response's score
      assert.ok(Math.abs(bad.modelConfidence - right.confidence) < 1e-9);
      assert.ok(right.reflection !== null && right.reflection >= 0 && right.reflection <= 1);
      // with reflection none, C is O
      const plain = scorePair(
        loaded.model,
        tokenizer,
        r.prompt,
        r.answer,
        { ...opts, reflection: 'none' },
        i,
      );
      assert.equal(plain.reflection, null);
      assert.equal(plain.confidence, plain.consistency);
    });
  });

  it('the same seed gives the same samples', () => {
    const r = records[0]!;
    const opts = {
      eosTokenIds: loaded.eosTokenIds,
      k: 3,
      seed: 1,
      reflection: 'none' as const,
      temperature: 2,
    };
    const a = scorePair(loaded.model, tokenizer, r.prompt, r.answer, opts, 5);
    const b = scorePair(loaded.model, tokenizer, r.prompt, r.answer, opts, 5);
    assert.deepEqual(a.samples, b.samples);
  });

  it('reads the letters A, B, C as three tokens', () => {
    assert.equal(new Set(choiceTokenIds(tokenizer)).size, 3);
  });
});
