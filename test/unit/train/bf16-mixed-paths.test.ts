/**
 * bf16-mixed training on each native gemmBf16 path (AMX tiles, AVX512-BF16, the portable
 * fallback), forced in turn: a short LoRA run per path on the native backend (set for this file's
 * tests, whichever pass runs it). The paths round inputs identically and differ only in
 * accumulation order (and bf16 denormals, which these weights do not have): the first step's loss
 * (the forward of the untrained model) agrees with the fallback path's to 1e-4 relative (measured
 * 3e-8 AMX, 1e-5 AVX512-BF16); later steps drift apart like any two bf16 runs (2e-3 measured by
 * step 3), so each curve is held to the bf16-mixed tolerance of the f32 run (bf16-mixed.test.ts:
 * 2% + 0.01 nats since attention joined bf16 compute). A path the
 * CPU lacks is skipped with the reason printed (the only hardware-dependent skips).
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { backendInfo, setBackend } from '../../../src/backend/index.ts';
import { nativeBf16Path, nativeBf16Paths } from '../../../src/backend/native/load.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { BF16_HARDWARE, BF16_PATHS, describeNative } from '../backend/native-helpers.ts';

const STEPS = 6;

describeNative('bf16-mixed training per native gemmBf16 path', () => {
  const root = tempDir('attune-bf16-paths-');
  let previous: 'js' | 'native' = 'native';
  before(() => {
    previous = backendInfo().active;
    setBackend('native');
    writeTinyModel(join(root, 'model'), { hidden: 64 });
    writeJsonl(join(root, 'train.jsonl'), FACTS);
  });
  after(() => {
    nativeBf16Path('auto');
    setBackend(previous);
    rmSync(root, { recursive: true, force: true });
  });

  const run = (precision: string, tag: string): number[] => {
    const config = tinyConfig(root, {
      precision,
      lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
      train: { steps: STEPS, batch_size: 4, lr: 5e-3, max_grad_norm: 1 },
      output_dir: join(root, `run-${tag}`),
    });
    train(config);
    return readFileSync(join(config.output_dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { loss: number }).loss);
  };
  let f32: number[] = [];
  let fallback: number[] = [];

  for (const path of ['fallback', ...BF16_PATHS.filter((p) => p !== 'fallback')] as const) {
    it(`${path}: LoRA loss curve within 2% + 0.01 nats of f32 and the fallback path's first loss`, (t) => {
      if (!nativeBf16Paths().includes(path)) {
        t.skip(`${BF16_HARDWARE[path]} not available on this CPU`);
        return;
      }
      if (f32.length === 0) f32 = run('f32', 'f32');
      assert.equal(nativeBf16Path(path), path);
      const got = run('bf16-mixed', path);
      if (path === 'fallback') fallback = got;
      assert.equal(got.length, STEPS);
      for (let i = 0; i < STEPS; i++) {
        assert.ok(
          Math.abs(got[i]! - f32[i]!) <= 0.02 * f32[i]! + 0.01,
          `${path} step ${i + 1}: ${got[i]} vs f32 ${f32[i]}`,
        );
      }
      assert.ok(
        Math.abs(got[0]! - fallback[0]!) <= 1e-4 * fallback[0]!,
        `${path} step 1: ${got[0]} vs fallback path ${fallback[0]}`,
      );
      assert.ok(
        got.some((v, i) => v !== f32[i]),
        `${path}: identical to f32, the bf16 GEMMs did not run`,
      );
    });
  }
});
