import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, saveModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { fromArray, noGrad, scope } from '../../../src/tensor/index.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-trainer-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 64 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function logits(model: ReturnType<typeof loadModel>['model'], ids: number[]): Float32Array {
  return noGrad(() =>
    scope(() =>
      Float32Array.from(
        model.logits(model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' })))
          .data as Float32Array,
      ),
    ),
  );
}

/** max |a - b| / max |b| (relative to the reference's scale). */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

describe('trainer', () => {
  it('LoRA drives the loss of a small dataset close to zero; the adapter reloads and merges exactly', () => {
    const config = tinyConfig(root, {
      lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
      train: { steps: 60, batch_size: 4, lr: 2e-2, max_grad_norm: 1 },
      output_dir: join(root, 'run-lora'),
    });
    const result = train(config);
    const lines = readFileSync(join(config.output_dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 60);
    for (const key of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s']) assert.ok(key in lines[0], key);
    assert.ok(lines[0].loss > 2, `initial loss ${lines[0].loss}`);
    assert.ok(result.finalLoss < 0.02, `final loss ${result.finalLoss}`);
    assert.ok(existsSync(join(config.output_dir, 'adapter', 'adapter_model.safetensors')));
    assert.ok(existsSync(join(config.output_dir, 'config.resolved.yaml')));
    // reload: base + adapter gives the trained logits
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logits(result.model, ids);
    const reloaded = loadModel(join(root, 'model'));
    loadAdapter(reloaded.model, join(config.output_dir, 'adapter'));
    assert.ok(relDiff(logits(reloaded.model, ids), trained) <= 1e-5);
    // merge into a plain model dir and reload
    const adapter = loadAdapter(loadModel(join(root, 'model')).model, join(config.output_dir, 'adapter'));
    const merged = adapter.mergeAndUnload();
    saveModel(merged as typeof reloaded.model, join(root, 'merged'), { tokenizerFrom: join(root, 'model') });
    assert.ok(relDiff(logits(loadModel(join(root, 'merged')).model, ids), trained) <= 1e-5);
  });

  it('resuming after a kill at step k reproduces the uninterrupted run exactly', () => {
    const overrides = (dir: string) => ({
      train: {
        steps: 8,
        batch_size: 2,
        lr: 1e-2,
        save_every: 3,
        seed: 5,
        schedule: 'cosine',
        warmup_steps: 2,
      },
      lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'] },
      output_dir: join(root, dir),
    });
    const full = train(tinyConfig(root, overrides('run-full')));
    const cfg = tinyConfig(root, overrides('run-killed'));
    assert.throws(() => train(cfg, { haltAfterStep: 5 }), TrainingHalted);
    const resumed = train(cfg, { resume: true });
    const a = full.adapter.state();
    const b = resumed.adapter.state();
    assert.equal(a.size, b.size);
    for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, name);
    const metricsA = readFileSync(join(root, 'run-full', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).loss);
    const metricsB = readFileSync(join(root, 'run-killed', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).loss);
    assert.deepEqual(metricsB, metricsA);
  });

  it('stops on a non-finite loss with a clear message, keeping the last good checkpoint', () => {
    const config = tinyConfig(root, {
      method: 'full',
      train: { steps: 20, lr: 1e4, optimizer: 'sgd', max_grad_norm: 0, save_every: 1 },
      output_dir: join(root, 'run-nan'),
    });
    assert.throws(
      () => train(config),
      /step \d+: the loss or gradient is not finite .*Last good checkpoint: .*step-\d+/,
    );
    assert.ok(existsSync(join(root, 'run-nan', 'checkpoints', 'latest')));
  });

  it('full fine-tuning writes a model directory', () => {
    const config = tinyConfig(root, {
      method: 'full',
      train: { steps: 3, lr: 1e-3 },
      output_dir: join(root, 'run-full-ft'),
    });
    const r = train(config);
    assert.ok(existsSync(join(r.finalDir, 'model.safetensors')));
    assert.ok(existsSync(join(r.finalDir, 'tokenizer.json')));
    loadModel(r.finalDir);
  });

  it('refuses an existing output_dir without --resume or --overwrite, before training', () => {
    const config = tinyConfig(root, { train: { steps: 1 }, output_dir: join(root, 'run-lora') });
    assert.throws(() => train(config), /already exists: pass --resume to continue it or --overwrite/);
  });

  it('fails on bad data before the first step, naming file and line', () => {
    const bad = writeJsonl(join(root, 'bad.jsonl'), [FACTS[0], { prompt: 'x', completion: 3 }]);
    const config = tinyConfig(root, { data: { train: bad }, output_dir: join(root, 'run-bad') });
    assert.throws(() => train(config), /bad\.jsonl:2: .*completion/);
    assert.ok(!existsSync(join(root, 'run-bad', 'checkpoints')));
  });
});
