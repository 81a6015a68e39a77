import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  batchTransforms,
  createBatchTransforms,
  type TransformableBatch,
  tokenUniform,
} from '../../../src/data/index.ts';

/** Row-major batch of `rows` examples (one per row, no padding); labels -100 on the first `prompt[r]` tokens. */
function batchOf(ids: number[][], prompt: number[], exampleIds?: number[]): TransformableBatch {
  const T = ids[0]!.length;
  const inputIds = Int32Array.from(ids.flat());
  const labels = Int32Array.from(ids.flatMap((row, r) => row.map((v, t) => (t < prompt[r]! ? -100 : v))));
  const exampleOf = Int32Array.from(ids.flatMap((row, r) => row.map(() => exampleIds?.[r] ?? r)));
  const positionOf = Int32Array.from(ids.flatMap((row) => row.map((_, t) => t)));
  assert.equal(inputIds.length, ids.length * T);
  return { inputIds, labels, exampleOf, positionOf };
}

const ctx = { seed: 7, step: 3, padTokenId: 0 };

function longBatch(rows: number, T: number): { ids: number[][]; prompt: number[] } {
  const ids = Array.from({ length: rows }, (_, r) =>
    Array.from({ length: T }, (_, t) => 10 + ((r * 31 + t) % 50)),
  );
  return { ids, prompt: Array.from({ length: rows }, (_, r) => 3 + (r % 4)) };
}

describe('data transforms: masked_thought', () => {
  it('is registered with ratio 0.2 by default and validates its options', () => {
    assert.ok(batchTransforms.has('masked_thought'));
    assert.deepEqual(batchTransforms.parse('masked_thought'), {
      name: 'masked_thought',
      ratio: 0.2,
      mask_token_id: null,
    });
    assert.throws(
      () => createBatchTransforms([{ name: 'masked_thought', ratio: 1 }]),
      /data\.transforms\.0.*ratio/,
    );
    assert.throws(() => createBatchTransforms([{ name: 'masked_thougt' }]), /did you mean 'masked_thought'/);
  });

  it('masks only response tokens, exactly where the keyed draw is below ratio; labels unchanged', () => {
    const { ids, prompt } = longBatch(6, 40);
    const b = batchOf(ids, prompt);
    const labelsBefore = Int32Array.from(b.labels);
    const [mt] = createBatchTransforms([{ name: 'masked_thought', ratio: 0.3, mask_token_id: 1 }]);
    mt!.apply(b, ctx);
    assert.deepEqual(b.labels, labelsBefore);
    let masked = 0;
    let response = 0;
    for (let r = 0; r < ids.length; r++) {
      for (let t = 0; t < 40; t++) {
        const i = r * 40 + t;
        if (t < prompt[r]!) {
          assert.equal(b.inputIds[i], ids[r]![t], `prompt token ${r},${t} changed`);
          continue;
        }
        response++;
        const expectMask = tokenUniform(7, 3, r, t) < 0.3;
        assert.equal(b.inputIds[i], expectMask ? 1 : ids[r]![t], `token ${r},${t}`);
        if (expectMask) masked++;
      }
    }
    // the draws are uniform: about 30% of ~210 response tokens (binomial sd ~ 6.6)
    assert.ok(Math.abs(masked / response - 0.3) < 0.1, `${masked}/${response}`);
  });

  it('defaults to the pad id; ratio 0 changes nothing', () => {
    const { ids, prompt } = longBatch(4, 30);
    const b = batchOf(ids, prompt);
    createBatchTransforms([{ name: 'masked_thought', ratio: 0.5 }])[0]!.apply(b, { ...ctx, padTokenId: 2 });
    const changed = [...b.inputIds].filter((v, i) => v !== ids.flat()[i]);
    assert.ok(changed.length > 10);
    assert.ok(changed.every((v) => v === 2));
    const c = batchOf(ids, prompt);
    createBatchTransforms([{ name: 'masked_thought', ratio: 0 }])[0]!.apply(c, ctx);
    assert.deepEqual([...c.inputIds], ids.flat());
  });

  it('depends on (seed, step, example, position), not on where the example sits in the batch', () => {
    const { ids, prompt } = longBatch(2, 30);
    const [mt] = createBatchTransforms([{ name: 'masked_thought', ratio: 0.4, mask_token_id: 1 }]);
    const a = batchOf(ids, prompt, [5, 9]);
    mt!.apply(a, ctx);
    // same examples, rows swapped
    const b = batchOf([ids[1]!, ids[0]!], [prompt[1]!, prompt[0]!], [9, 5]);
    mt!.apply(b, ctx);
    assert.deepEqual([...b.inputIds.slice(0, 30)], [...a.inputIds.slice(30)]);
    assert.deepEqual([...b.inputIds.slice(30)], [...a.inputIds.slice(0, 30)]);
    // another step draws another mask
    const c = batchOf(ids, prompt, [5, 9]);
    mt!.apply(c, { ...ctx, step: 4 });
    assert.notDeepEqual([...c.inputIds], [...a.inputIds]);
  });
});

describe('data transforms: token_weight', () => {
  it('weights the first leading_tokens trained tokens of each example, the rest by weight', () => {
    // row 0: prompt 2 tokens; row 1: prompt 3 tokens; T = 6
    const b = batchOf(
      [
        [1, 2, 3, 4, 5, 6],
        [1, 2, 3, 4, 5, 6],
      ],
      [2, 3],
    );
    createBatchTransforms([
      { name: 'token_weight', leading_tokens: 2, leading_weight: 3, weight: 0.5 },
    ])[0]!.apply(b, ctx);
    // untrained positions keep weight 1 (the loss never sees them)
    assert.deepEqual([...b.weights!], [1, 1, 3, 3, 0.5, 0.5, 1, 1, 1, 3, 3, 0.5]);
  });

  it('multiplies with weights already set', () => {
    const b = batchOf([[1, 2, 3, 4]], [1]);
    b.weights = Float32Array.from([1, 2, 2, 2]);
    createBatchTransforms([{ name: 'token_weight', weight: 0.25 }])[0]!.apply(b, ctx);
    assert.deepEqual([...b.weights!], [1, 0.5, 0.5, 0.5]);
  });
});
