/**
 * `attune explore` on tiny models: a tuned adapter over a random base; examples are seeded and
 * deterministic, round 1 is the contrast decoding of the tuned model against the original base (as
 * the library's ContrastModel decodes it), each contrast score is the hand mean of log p_tuned -
 * log p_base, and the iterative rounds decode against an updated base.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ContrastModel, generate, loadModel, scoreIds } from '../../../../src/models/index.ts';
import { loadAdapter } from '../../../../src/peft/index.ts';
import { train } from '../../../../src/train/index.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-explore-');
after(() => rmSync(root, { recursive: true, force: true }));
const base = writeTinyModel(join(root, 'model'), { seed: 5 });
writeJsonl(join(root, 'train.jsonl'), FACTS);
const adapter = train(tinyConfig(root, { train: { steps: 15, lr: 3e-2 } }), { overwrite: true }).adapterDir;

interface Example {
  round: number;
  index: number;
  text: string;
  ids: number[];
  contrast_score: number;
}

const argv = (out: string) => [
  'explore',
  '--base',
  base,
  '--tuned',
  `${base}:${adapter}`,
  '--n',
  '3',
  '--rounds',
  '2',
  '--max-new-tokens',
  '8',
  '--update-steps',
  '6',
  '--update-lr',
  '0.03',
  '--seed',
  '4',
  '--out',
  out,
  '--json',
];

describe('attune explore', () => {
  it('is seeded and deterministic, and round 1 is the contrast of the tuned model with its base', async () => {
    const first = await attune(argv(join(root, 'a.jsonl')));
    assert.equal(first.status, 0, first.stderr);
    const again = await attune(argv(join(root, 'b.jsonl')));
    const examples = first.json!.examples as Example[];
    assert.deepEqual(again.json!.examples, examples);
    assert.equal(examples.length, 6);
    assert.deepEqual(
      examples.map((e) => e.round),
      [0, 0, 0, 1, 1, 1],
    );
    const written = readFileSync(join(root, 'a.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(written, examples);

    const plain = loadModel(base);
    const tuned = loadModel(base);
    loadAdapter(tuned.model, adapter);
    const contrast = new ContrastModel({ name: 't', model: tuned.model }, { name: 'b', model: plain.model });
    const bos = plain.tokenizer!.bosTokenId!;
    const eos = plain.eosTokenIds;
    let differs = 0;
    for (const e of examples) {
      const g = generate(contrast, [bos], {
        maxNewTokens: 8,
        temperature: 1,
        seed: 4 + e.round * 3 + e.index,
        eosTokenIds: eos,
      });
      const ids = g.stopReason === 'length' ? g.generatedIds : g.generatedIds.slice(0, -1);
      if (e.round === 0) assert.deepEqual(e.ids, ids, `example ${e.index}`);
      else if (JSON.stringify(e.ids) !== JSON.stringify(ids)) differs++;
      // contrast score by hand: mean over the example's tokens of log p_tuned - log p_base
      const all = [bos, ...e.ids];
      const t = scoreIds(tuned.model, all).tokens;
      const b = scoreIds(plain.model, all).tokens;
      const hand =
        e.ids.length === 0
          ? 0
          : e.ids.reduce((s, _, i) => s + t[i + 1]!.logprob! - b[i + 1]!.logprob!, 0) / e.ids.length;
      assert.ok(Math.abs(e.contrast_score - hand) < 1e-4, `score of ${e.round}/${e.index}`);
    }
    // round 2 contrasts with the updated base, not the original one
    assert.ok(differs > 0, 'round 2 decoded as if the base had not been updated');
  });

  it('refuses to replace --out without --overwrite, before loading anything', async () => {
    const r = await attune([
      'explore',
      '--base',
      join(root, 'absent'),
      '--tuned',
      base,
      '--out',
      join(root, 'a.jsonl'),
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /a\.jsonl exists; pass --overwrite/);
  });
});
