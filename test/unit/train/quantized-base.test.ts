/**
 * `model_dtype: int8 | nf4` end to end on a tiny Llama (both backends): a LoRA run on a quantised
 * base whose loss falls and stays within a stated tolerance of the f32-base run, the base matrices
 * stored quantised (never f32 / bf16) and unchanged by training, the LM head and embeddings left
 * as bf16, and a method that trains base matrices refused with a one-line error.
 *
 * Tolerance (this config: 20 steps, lr 5e-3, all-linear LoRA r 8 on a 64-wide model): every step's
 * loss within 3% + 0.03 nats of the f32 run's for int8 and within 0.5 nats for nf4. Measured
 * 2026-12-03 (native): int8 max 0.118 nats (3.4% at a loss of 5.3, early steps), nf4 max 0.357
 * nats: 4 bits move this tiny random model itself (step-1 loss 8.32 vs 8.59), and the curves meet
 * again as the adapter learns (step 20: 0.031 vs 0.026). QUANT_CURVES=1 prints the curves.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, scoreIds } from '../../../src/models/index.ts';
import { Parameter, QuantizedParameter } from '../../../src/nn/index.ts';
import { train } from '../../../src/train/trainer.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-quant-base-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 64 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);
}

function loraRun(modelDtype: string) {
  const config = tinyConfig(root, {
    model_dtype: modelDtype,
    lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
    train: { steps: 20, batch_size: 4, lr: 5e-3, max_grad_norm: 1 },
    output_dir: join(root, `run-lora-${modelDtype}`),
  });
  return { config, result: train(config) };
}

/** [relative, absolute] tolerance of each step's loss against the f32-base run's (file comment). */
const TOLERANCE: Record<string, [number, number]> = { int8: [0.03, 0.03], nf4: [0, 0.5] };

/**
 * Scores of `dir` loaded with --dtype `format`, and of its twin loaded in bf16 whose quantised
 * matrices are replaced by their dequantised f32 values: the same numbers up to accumulation order.
 */
function quantisedAndTwin(dir: string, format: 'int8' | 'nf4', ids: number[]): [number[], number[], number] {
  const q = loadModel(dir, { dtype: format }).model;
  const twin = loadModel(dir, { dtype: 'bf16' }).model;
  let swapped = 0;
  for (const [name, p] of q.namedParameters()) {
    if (!(p instanceof QuantizedParameter)) continue;
    const values = p.dequantize();
    twin.setParameter(name, new Parameter(values.data, p.shape, { requiresGrad: false }));
    swapped++;
  }
  const scores = (m: typeof q) =>
    scoreIds(m, ids)
      .tokens.slice(1)
      .map((t) => t.logprob!);
  return [scores(q), scores(twin), swapped];
}

describe('--dtype int8 | nf4 at inference', () => {
  const gpt2 = testModelDir('tiny-gpt2-random');
  for (const format of ['int8', 'nf4'] as const) {
    it(`${format}: a Llama scores as its dequantised twin`, () => {
      const [a, b, swapped] = quantisedAndTwin(join(root, 'model'), format, [1, 5, 9, 2, 7, 3, 11, 4]);
      assert.equal(swapped, 14);
      for (let t = 0; t < a.length; t++)
        assert.ok(Math.abs(a[t]! - b[t]!) < 1e-4, `token ${t}: ${a[t]} vs ${b[t]}`);
    });
    it(`${format}: GPT-2 (Conv1D weights [in, out], x W) scores as its dequantised twin`, {
      skip: gpt2.skip,
    }, () => {
      const [a, b, swapped] = quantisedAndTwin(gpt2.dir!, format, [464, 3797, 338, 15496, 11, 995]);
      assert.ok(swapped >= 4, `${swapped} matrices quantised`);
      for (let t = 0; t < a.length; t++)
        assert.ok(Math.abs(a[t]! - b[t]!) < 1e-4, `token ${t}: ${a[t]} vs ${b[t]}`);
    });
  }
});

describe('model_dtype: int8 | nf4', () => {
  const f32 = loraRun('f32');
  const base = losses(f32.config.output_dir);

  for (const format of ['int8', 'nf4'] as const) {
    it(`${format}: LoRA trains on the quantised base, within the stated tolerance of the f32 base`, () => {
      const run = loraRun(format);
      const q = losses(run.config.output_dir);
      assert.equal(q.length, 20);
      const [rel, abs] = TOLERANCE[format]!;
      if (process.env.QUANT_CURVES) console.log(JSON.stringify({ format, base, q }));
      let maxDiff = 0;
      for (let i = 0; i < base.length; i++) {
        const d = Math.abs(base[i]! - q[i]!);
        maxDiff = Math.max(maxDiff, d);
        assert.ok(d <= rel * base[i]! + abs, `step ${i + 1}: ${format} loss ${q[i]} vs f32 ${base[i]}`);
      }
      console.log(`# ${format}: max |loss - f32 loss| over 20 steps = ${maxDiff.toFixed(4)} nats`);
      assert.ok(maxDiff > 0, `${format} gave the f32 curve exactly: the quantised GEMM did not run`);
      assert.ok(q[19]! < 0.1 * q[0]!, `${format} did not train: ${q[0]} -> ${q[19]}`);
      // every attention / MLP matrix is quantised; trainable ones are the LoRA matrices in f32
      const model = run.result.model;
      let quantised = 0;
      for (const [name, p] of model.namedParameters()) {
        if (p instanceof QuantizedParameter) {
          quantised++;
          assert.equal(p.format, format, name);
          assert.equal(p.requiresGrad, false, name);
          assert.match(name, /(q|k|v|o|gate|up|down)_proj\.weight$/);
        } else if (p.requiresGrad) {
          assert.equal(p.dtype, 'f32', name);
          assert.ok(name.includes('lora_'), `${name} trainable under LoRA`);
        } else if (p.rank === 2) {
          // embeddings / tied LM head: bf16 as model_dtype bf16 would store them
          assert.equal(p.dtype, 'bf16', name);
        }
      }
      assert.equal(quantised, 2 * 7, 'two layers of seven projections each');
    });
  }

  it('a method that trains base matrices is refused with a one-line error naming it', () => {
    const config = tinyConfig(root, {
      model_dtype: 'nf4',
      method: 'full',
      output_dir: join(root, 'run-full-nf4'),
    });
    assert.throws(() => train(config), /model_dtype: nf4 .* method 'full' trains base matrices/);
  });

  it('DoRA and PiSSA, which read the base weight, are refused naming it', () => {
    const run = (lora: Record<string, unknown>) =>
      train(tinyConfig(root, { model_dtype: 'int8', lora, output_dir: join(root, 'run-refused') }));
    assert.throws(
      () => run({ r: 4, lora_alpha: 8, use_dora: true }),
      /DoRA \(use_dora\) needs the values of 'model\.layers\.0\.self_attn\.q_proj\.weight', which model_dtype int8 stores quantised/,
    );
    assert.throws(
      () => run({ r: 4, lora_alpha: 8, init_lora_weights: 'pissa' }),
      /init_lora_weights 'pissa' needs a float weight/,
    );
  });
});
