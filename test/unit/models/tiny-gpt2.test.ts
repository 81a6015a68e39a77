/**
 * The real GPT-2 checkpoint `tiny-gpt2-random` (written by transformers 4.52.1): loads under the
 * Hub's names, scores within 1e-4 of the float64 numpy reference, generates the reference's greedy
 * ids with the KV cache, and its GPT-2 byte-level BPE tokenizer gives the ids an independent
 * implementation from vocab.json + merges.txt gives (scripts/reference/).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openCheckpoint } from '../../../src/io/index.ts';
import { type Gpt2LMHeadModel, generate, loadModel, scoreIds } from '../../../src/models/index.ts';
import { fromArray, noGrad, scope } from '../../../src/tensor/index.ts';
import { testModelDir } from '../../helpers/models-env.ts';

const model = testModelDir('tiny-gpt2-random');
const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

/** scripts/reference/gpt2_reference.py checkpoint <dir> <ids> 8 */
const reference = JSON.parse(readFileSync(join(fixtures, 'tiny-gpt2-random-reference.json'), 'utf8')) as {
  ids: number[];
  logprobs: number[];
  entropies: number[];
  last_logits_every_1000: number[];
  greedy: number[];
  margins: number[];
};
/** scripts/reference/gpt2_tokenizer_reference.py <dir> */
const tokenized = JSON.parse(readFileSync(join(fixtures, 'tiny-gpt2-tokenizer-reference.json'), 'utf8')) as {
  text: string;
  ids: number[];
}[];

describe('real checkpoint: tiny-gpt2-random (written by transformers)', { skip: model.skip }, () => {
  const loaded = loadModel(model.dir!);
  it('loads every tensor under the Hub names, wte as the tied head (the file has no lm_head.weight)', () => {
    const m = loaded.model as Gpt2LMHeadModel;
    assert.equal(loaded.config.modelType, 'gpt2');
    assert.equal(m.lm_head, null);
    assert.equal(m.lmHeadWeight(), m.transformer.wte.weight);
    const r = openCheckpoint(model.dir!);
    try {
      assert.ok(!r.has('lm_head.weight'));
      const params = m
        .namedParameters()
        .map(([n]) => n)
        .sort();
      assert.deepEqual(params, r.names());
      const stored = r.read('transformer.h.1.mlp.c_fc.weight');
      assert.deepEqual(stored.shape, [2, 8]);
      assert.deepEqual(m.transformer.h.at(1).mlp.c_fc.weight.data, stored.data);
    } finally {
      r.close();
    }
    assert.deepEqual(loaded.eosTokenIds, [50256]);
  });
  it('tokenizes exactly as GPT-2 byte-level BPE from vocab.json + merges.txt', () => {
    const tok = loaded.tokenizer!;
    // well-known GPT-2 ids, written down independently of both implementations
    assert.deepEqual(tok.encode('Hello, world!'), [15496, 11, 995, 0]);
    assert.deepEqual(tok.encode("The cat's"), [464, 3797, 338]);
    assert.equal(tokenized.length, 8);
    for (const { text, ids } of tokenized) {
      assert.deepEqual(tok.encode(text), ids, JSON.stringify(text));
      assert.equal(tok.decode(ids), text, 'byte-level BPE round-trips');
    }
  });
  it('scores per-token log-probs and entropies within 1e-4 of the float64 reference', () => {
    const s = scoreIds(loaded.model, reference.ids);
    for (let t = 0; t < reference.logprobs.length; t++) {
      assert.ok(Math.abs(s.tokens[t + 1]!.logprob! - reference.logprobs[t]!) < 1e-4, `logprob ${t}`);
      assert.ok(Math.abs(s.tokens[t + 1]!.entropy! - reference.entropies[t]!) < 1e-4, `entropy ${t}`);
    }
    const last = noGrad(() =>
      scope(() => {
        const ids = reference.ids;
        const h = loaded.model.forwardHidden(
          fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }),
        );
        const logits = loaded.model.logits(h).data as Float32Array;
        const row = logits.subarray((ids.length - 1) * 50257);
        return reference.last_logits_every_1000.map((_, i) => row[i * 1000]!);
      }),
    );
    for (let i = 0; i < last.length; i++)
      assert.ok(Math.abs(last[i]! - reference.last_logits_every_1000[i]!) < 1e-5);
  });
  it('generates the reference greedy ids with the KV cache', () => {
    // the reference's top-1/top-2 logit margins are far above float32 rounding
    assert.ok(Math.min(...reference.margins) > 1e-3);
    const g = generate(loaded.model, reference.ids, { maxNewTokens: reference.greedy.length });
    assert.deepEqual(g.generatedIds, reference.greedy);
  });
});
