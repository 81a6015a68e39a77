import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { analyzeIntruders, countIntruders, intrudersFromVectors } from '../../../src/analysis/index.ts';
import { ConfigError, TensorMismatchError } from '../../../src/errors.ts';
import { openCheckpoint, writeCheckpoint } from '../../../src/io/index.ts';
import { type LlamaForCausalLM, loadModel, saveModel } from '../../../src/models/index.ts';
import type { Linear } from '../../../src/nn/index.ts';
import { applyLora, loadAdapter } from '../../../src/peft/index.ts';
import { type Matrix64, matrix64, Rng, svd, tensorToMatrix64 } from '../../../src/tensor/index.ts';
import { cleanup, runCli, tempDir, tinyModel, tunedVariant } from '../merge/compress/helpers.ts';

after(cleanup);

function randomMatrix(m: number, n: number, seed: number): Matrix64 {
  const rng = new Rng(seed);
  return matrix64(
    m,
    n,
    Float64Array.from({ length: m * n }, () => rng.normal()),
  );
}

/** A unit vector with equal |cos| 1/sqrt(m) to every column of the orthonormal m x m `u`. */
function evenlySpread(u: Matrix64): Float64Array {
  const m = u.rows;
  const x = new Float64Array(m);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < u.cols; j++) x[i]! += u.data[i * u.cols + j]! / Math.sqrt(u.cols);
  return x;
}

/** a + scale * x y^T with y a fixed unit vector. */
function plusRankOne(a: Matrix64, x: Float64Array, scale: number, seed: number): Matrix64 {
  const rng = new Rng(seed);
  const y = Float64Array.from({ length: a.cols }, () => rng.normal());
  const norm = Math.hypot(...y);
  const out = matrix64(a.rows, a.cols, Float64Array.from(a.data));
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < a.cols; j++) out.data[i * a.cols + j]! += (scale * x[i]! * y[j]!) / norm;
  return out;
}

describe('intruder dimensions: counting', () => {
  it('compares tuned vectors with every base vector by |cos| against the threshold', () => {
    const base = matrix64(4, 4, [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const s = Math.SQRT1_2;
    const tuned = matrix64(4, 3, [-1, s, 0.5, 0, s, 0.5, 0, 0, 0.5, 0, 0, 0.5]);
    const r = intrudersFromVectors(base, tuned, 0.5);
    assert.deepEqual(
      r.maxCos.map((c) => Number(c.toFixed(6))),
      [1, Number(Math.SQRT1_2.toFixed(6)), 0.5],
    );
    assert.equal(r.intruders, 0, '|cos| = 0.5 is not below 0.5');
    const strict = intrudersFromVectors(base, tuned, 0.6);
    assert.deepEqual(strict.intruderRanks, [2]);
  });

  it('an unchanged matrix has none; a strong new direction is an intruder; amplifying a base direction is not', () => {
    const base = randomMatrix(48, 64, 1);
    const same = countIntruders(base, base);
    assert.equal(same.intruders, 0);
    assert.equal(same.topK, 10);
    assert.ok(same.maxCos.every((c) => c > 1 - 1e-9));
    const u = svd(base, { vectors: 'left' }).u!;
    const spike = plusRankOne(base, evenlySpread(u), 100, 2);
    const intruded = countIntruders(base, spike);
    assert.equal(intruded.intruders, 1);
    assert.deepEqual(intruded.intruderRanks, [0]);
    assert.ok(intruded.maxCos[0]! < 0.25, `max cos ${intruded.maxCos[0]}`);
    const u5 = Float64Array.from({ length: 48 }, (_, i) => u.data[i * 48 + 5]!);
    const amplified = countIntruders(base, plusRankOne(base, u5, 100, 3), { topK: 5 });
    assert.equal(amplified.intruders, 0);
    assert.equal(amplified.topK, 5);
    assert.throws(() => countIntruders(base, base, { threshold: 0 }), ConfigError);
    assert.throws(() => countIntruders(base, base, { topK: 0 }), ConfigError);
  });

  it('a tall matrix compares against its min(out, in) left singular vectors', () => {
    const base = randomMatrix(40, 12, 4);
    const r = countIntruders(base, base, { topK: 20 });
    assert.equal(r.topK, 12);
    assert.equal(r.intruders, 0);
  });
});

describe('intruder dimensions: model directories', () => {
  const root = tempDir();
  const base = tinyModel(join(root, 'base'));
  const target = 'model.layers.0.self_attn.q_proj';

  // a rank-1 LoRA whose B A is a strong direction spread evenly over q_proj's base singular vectors
  const adapterDir = join(root, 'adapter');
  const loaded = loadModel(base);
  const w = tensorToMatrix64((loaded.model.getSubmodule(target) as Linear).weight);
  const x = evenlySpread(svd(w, { vectors: 'left' }).u!);
  const lora = applyLora(loaded.model, { r: 1, loraAlpha: 1, targetModules: ['q_proj'] });
  const rng = new Rng(5);
  for (const [name, p] of loaded.model.namedParameters()) {
    if (!name.includes('.lora_')) continue;
    const data = p.data as Float32Array;
    if (name === `${target}.lora_B.weight`) for (let i = 0; i < data.length; i++) data[i] = 50 * x[i]!;
    else if (name.endsWith('.lora_B.weight')) data.fill(0);
    else for (let i = 0; i < data.length; i++) data[i] = rng.normal() / Math.sqrt(data.length);
  }
  lora.save(adapterDir);

  it('--adapter: W + scaling B A, one intruder where the update points somewhere new', () => {
    const report = analyzeIntruders({ base, adapter: adapterDir });
    assert.deepEqual(
      report.matrices.map((m) => [m.name, m.intruders]),
      [
        [`${target}.weight`, 1],
        ['model.layers.1.self_attn.q_proj.weight', 0],
      ],
    );
    assert.deepEqual(report.totals, { matrices: 2, intruders: 1, matrices_with_intruders: 1 });
    assert.ok(report.matrices[0]!.min_max_cos < 0.5);
    assert.deepEqual(report.matrices[0]!.shape, [32, 32]);
  });

  it('--tuned gives the same answer for the merged model; unchanged matrices have none', () => {
    const model = loadModel(base).model;
    const merged = loadAdapter(model, adapterDir).mergeAndUnload() as LlamaForCausalLM;
    const tunedDir = join(root, 'merged');
    saveModel(merged, tunedDir);
    const seen: string[] = [];
    const report = analyzeIntruders({ base, tuned: tunedDir, onMatrix: (_i, _n, name) => seen.push(name) });
    assert.equal(report.totals.matrices, 14, '7 linear layers x 2, embeddings excluded');
    assert.equal(seen.length, 14);
    assert.deepEqual(
      report.matrices.filter((m) => m.intruders > 0).map((m) => m.name),
      [`${target}.weight`],
    );
    const only = analyzeIntruders({ base, tuned: tunedDir, matrices: /layers\.1\./, topK: 3 });
    assert.equal(only.totals.matrices, 7);
    assert.equal(only.totals.intruders, 0);
    assert.ok(only.matrices.every((m) => m.top_k === 3));
  });

  it('different architectures and missing or mis-shaped matrices fail listing the tensors', () => {
    const wide = tinyModel(join(root, 'wide'), { hidden: 48 });
    assert.throws(() => analyzeIntruders({ base, tuned: wide }), /different architectures/);
    const broken = tunedVariant(base, join(root, 'broken'), 2);
    const reader = openCheckpoint(broken);
    const tensors = new Map(reader.names().map((n) => [n, reader.read(n)]));
    reader.close();
    tensors.delete('model.layers.1.mlp.down_proj.weight');
    tensors.set(
      'model.layers.0.self_attn.o_proj.weight',
      tensors.get('model.layers.0.self_attn.o_proj.weight')!.view([16, 64], { track: false }),
    );
    writeCheckpoint(broken, tensors);
    assert.throws(
      () => analyzeIntruders({ base, tuned: broken }),
      (e: unknown) =>
        e instanceof TensorMismatchError &&
        /down_proj\.weight' is missing/.test(e.message) &&
        /o_proj\.weight' is \[32,32\] in the base but \[16,64\]/.test(e.message),
    );
    const wideAdapter = join(root, 'wide-adapter');
    const wm = loadModel(wide).model;
    applyLora(wm, { r: 2, targetModules: ['v_proj'] }).save(wideAdapter);
    assert.throws(
      () => analyzeIntruders({ base, adapter: wideAdapter }),
      (e: unknown) => e instanceof TensorMismatchError && /2 problems/.test(e.message),
    );
  });

  it('attune analyze intruders prints a table and --json the report', async () => {
    const r = await runCli(['analyze', 'intruders', '--base', base, '--adapter', adapterDir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /1 intruder dimension\(s\) in 1 of 2 matrices/);
    assert.equal(r.json.command, 'analyze intruders');
    assert.equal(r.json.totals.intruders, 1);
    assert.equal(r.json.matrices[0].top_k, 10);
    const bad = await runCli([
      'analyze',
      'intruders',
      '--base',
      base,
      '--adapter',
      adapterDir,
      '--threshold',
      '2',
    ]);
    assert.equal(bad.status, 2);
    const neither = await runCli(['analyze', 'intruders', '--base', base]);
    assert.equal(neither.status, 2);
  });
});
