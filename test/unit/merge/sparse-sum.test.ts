import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TensorMismatchError } from '../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import { runMerge } from '../../../src/merge/index.ts';
import { loadModel, saveModel } from '../../../src/models/index.ts';
import { applyTuner, loadAdapter, PEFT_KEY_PREFIX, type SparseFtAdapter } from '../../../src/peft/index.ts';
import { Rng } from '../../../src/tensor/index.ts';
import { cleanup, config, tempDir, tensorsOf, tinyModel } from './helpers.ts';

after(cleanup);

const Q = 'model.layers.0.self_attn.q_proj';

/** A sparse_ft adapter on `baseDir` with seeded random values (indices drawn from `seed` too). */
function sparseAdapter(baseDir: string, dir: string, seed: number): SparseFtAdapter {
  const { model } = loadModel(baseDir);
  const adapter = applyTuner(model, 'sparse_ft', { density: 0.05, seed }) as SparseFtAdapter;
  const rng = new Rng(seed + 100);
  for (const [, l] of adapter.sparseLayers) l.sft_delta.values.fillWith(() => 0.1 * rng.normal());
  adapter.save(dir);
  return adapter;
}

describe('sparse_sum and sparse-delta merge inputs', () => {
  const root = tempDir();
  tinyModel(join(root, 'base'));
  const a = sparseAdapter(join(root, 'base'), join(root, 'sa'), 1);
  const b = sparseAdapter(join(root, 'base'), join(root, 'sb'), 2);

  it('base+sparse_delta reads W with the values added: one delta merges to the bytes of export --merge', () => {
    const out = join(root, 'one');
    runMerge(
      config({ merge_method: 'sparse_sum', base_model: 'base', models: [{ model: 'base+sa' }] }, root),
      { out },
    );
    const { model } = loadModel(join(root, 'base'));
    loadAdapter(model, join(root, 'sa')).mergeAndUnload();
    const exported = join(root, 'exported');
    saveModel(model, exported, { tokenizerFrom: join(root, 'base') });
    const merged = tensorsOf(out);
    for (const [n, t] of tensorsOf(exported)) assert.deepEqual(merged.get(n), t, n);
  });

  it('two deltas add up entry by entry, overlaps included; the report counts changed and overlapping entries', () => {
    const out = join(root, 'two');
    const report = runMerge(
      config(
        {
          merge_method: 'sparse_sum',
          base_model: 'base',
          models: [{ model: 'base+sa' }, { model: 'base+sb', parameters: { weight: 0.5 } }],
        },
        root,
      ),
      { out },
    ) as unknown as { method: Record<string, unknown> } & Record<string, unknown>;
    const base = tensorsOf(join(root, 'base'));
    const merged = tensorsOf(out);
    let overlaps = 0;
    let changedA = 0;
    for (const [n, w0] of base) {
      const expected = Float64Array.from(w0);
      const module = n.replace(/\.weight$/, '');
      const la = a.sparseLayers.find(([m]) => m === module)?.[1];
      const lb = b.sparseLayers.find(([m]) => m === module)?.[1];
      const hits = new Map<number, number>();
      for (const [l, w] of [
        [la, 1],
        [lb, 0.5],
      ] as const) {
        if (!l) continue;
        l.sft_delta.indices.forEach((p, j) => {
          const v = (l.sft_delta.values.data as Float32Array)[j]!;
          // the delta the merge sees is (W + v in f32) - W
          expected[p] = expected[p]! + w * (Math.fround(w0[p]! + v) - w0[p]!);
          hits.set(p, (hits.get(p) ?? 0) + 1);
        });
      }
      if (la) changedA += la.sft_delta.indices.length;
      overlaps += [...hits.values()].filter((c) => c > 1).length;
      const got = merged.get(n)!;
      for (let i = 0; i < got.length; i++) assert.equal(got[i], Math.fround(expected[i]!), `${n}[${i}]`);
    }
    assert.ok(overlaps > 0, 'the two random supports overlap somewhere (the test needs it)');
    const json = JSON.stringify(report);
    assert.match(json, new RegExp(`"overlapping_entries":${overlaps}`));
    assert.match(json, new RegExp(`"changed_entries":\\[${changedA},`));
  });

  it('a corrupt sparse delta (duplicate index) is refused naming the file and tensor, before writing', () => {
    const dir = join(root, 'bad');
    a.save(dir);
    const file = join(dir, 'adapter_model.safetensors');
    const reader = openSafetensors(file);
    const tensors = new Map(reader.names().map((n) => [n, reader.read(n)]));
    reader.close();
    const key = `${PEFT_KEY_PREFIX}${Q}.sft_delta.indices`;
    const idx = tensors.get(key)!.data as Int32Array;
    idx[1] = idx[0]!;
    writeSafetensors(file, tensors);
    assert.throws(
      () =>
        runMerge(
          config({ merge_method: 'sparse_sum', base_model: 'base', models: [{ model: 'base+bad' }] }, root),
          {
            out: join(root, 'never'),
          },
        ),
      (e: Error) =>
        e instanceof TensorMismatchError &&
        e.message.includes(file) &&
        e.message.includes(key) &&
        /twice/.test(e.message),
    );
  });
});
