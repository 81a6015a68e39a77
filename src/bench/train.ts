/**
 * `attune bench train`: one training step of a Llama in SmolLM2-135M's shape (random weights;
 * hidden 576, 30 layers, 9 heads / 3 KV heads, FFN 1536, vocab 49152, tied embeddings), the same
 * step as ../shared/anchors/torch_llama_bench.py: LoRA r=8 alpha=16 on q_proj and v_proj (or full
 * fine-tuning), AdamW, batch x seq random tokens, every token supervised, in f32 or bf16-mixed
 * precision (as `precision:` of a training config). Reports tokens/s, seconds per step, the
 * process's peak RSS (VmHWM) and which GEMM path ran (`gemm_path`). Presets: SmolLM2-135M's shape
 * (default), Qwen2.5-0.5B's and a tiny one; `activationCheckpointing` recomputes each layer in backward.
 */
import { readFileSync } from 'node:fs';
import { backendInfo, nativeBf16Path } from '../backend/index.ts';
import { ConfigError } from '../errors.ts';
import { type CausalLM, createModel, llamaConfigJson } from '../models/index.ts';
import { type Tuner, tuners } from '../peft/index.ts';
import { fromArray, isQuantFormat, Rng } from '../tensor/index.ts';
import { createLoss } from '../train/losses/index.ts';
import { AdamW } from '../train/optim/index.ts';
import {
  applyTrainPrecision,
  type BaseStorage,
  baseStorageDtype,
  type TrainPrecision,
} from '../train/precision.ts';
import { forwardBackwardStep } from '../train/step.ts';
import { type BenchEnvelope, envelope } from './envelope.ts';

export const TRAIN_PRESETS = {
  'smollm2-135m': {
    vocabSize: 49152,
    hiddenSize: 576,
    intermediateSize: 1536,
    numLayers: 30,
    numHeads: 9,
    numKvHeads: 3,
  },
  /** Qwen2.5-0.5B's shape (q/k/v bias, 14 heads / 2 KV heads, tied embeddings of a 151936 vocabulary). */
  'qwen2.5-0.5b': {
    vocabSize: 151936,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    modelType: 'qwen2',
  },
  tiny: { vocabSize: 512, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2 },
} as const;

export interface TrainBenchOptions {
  preset?: keyof typeof TRAIN_PRESETS;
  /** A registered tuner name (default lora), with its default options. */
  method?: string;
  /** Storage of the frozen base (default f32; bf16, or int8 / nf4 block-quantised: LoRA-family methods only). */
  dtype?: BaseStorage;
  /** Compute precision (default f32); bf16-mixed also stores the frozen base matrices in bf16. */
  precision?: TrainPrecision;
  batch?: number;
  seq?: number;
  /** Timed steps (after one warm-up step). */
  steps?: number;
  /** Override the number of layers (quick runs). */
  layers?: number;
  /** Recompute each decoder layer in backward instead of keeping its activations (default false). */
  activationCheckpointing?: boolean;
  /**
   * The method's `target_modules` instead of its default (module names, or 'all-linear'), so that
   * methods with different default targets can be compared on the same matrices; null = the default.
   */
  targetModules?: string[] | string | null;
  /**
   * Call the method's step hooks (beginStep, afterBackward, afterStep) as in a run of `runSteps`
   * steps: the warm-up is step `runStep`, the timed steps the ones after it (sparse FT from step 1:
   * regrowth-accumulation steps with the dense gradient; GreenTrainer from step 1: its reselection
   * step, then steps on the selected set); 0 (default) calls none, the method's state at `apply`.
   */
  runStep?: number;
  /** The run length those hooks are told (default 100). */
  runSteps?: number;
}

/** The tuner's options with `targetModules` set (a ConfigError when the tuner has no target_modules). */
function tunerOptions(tuner: Tuner, targetModules: string[] | string | null): Record<string, unknown> {
  if (targetModules === null) return tuner.options.parse({});
  if (!('target_modules' in tuner.options.shape))
    throw new ConfigError(
      `bench train: --target-modules was given, but method '${tuner.name}' has no target_modules option (it trains a fixed set of tensors); leave --target-modules out`,
    );
  return tuner.options.parse({ target_modules: targetModules });
}

/** Peak resident set size of this process in MB (VmHWM), or null where /proc is missing. */
export function peakRssMb(): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

function buildModel(o: Required<TrainBenchOptions>): CausalLM {
  const shape = TRAIN_PRESETS[o.preset];
  const config = llamaConfigJson({
    ...shape,
    numLayers: o.layers > 0 ? o.layers : shape.numLayers,
    tieWordEmbeddings: true,
  });
  return createModel(config, { seed: 0, dtype: o.dtype });
}

/**
 * The GEMM path of the Linear layers under `precision` on the active backend: `sgemm` (f32), or
 * `gemmBf16:` + the native bf16 path (amx, avx512bf16, fallback) or `gemmBf16:js`.
 */
export function gemmPathOf(precision: TrainPrecision): string {
  if (precision === 'f32') return 'sgemm';
  return `gemmBf16:${backendInfo().active === 'native' ? nativeBf16Path() : 'js'}`;
}

/** Time training steps; resolves to the bench envelope with one row. */
export async function runTrainBench(options: TrainBenchOptions = {}): Promise<BenchEnvelope> {
  const o: Required<TrainBenchOptions> = {
    preset: options.preset ?? 'smollm2-135m',
    method: options.method ?? 'lora',
    dtype: options.dtype ?? 'f32',
    precision: options.precision ?? 'f32',
    batch: options.batch ?? 4,
    seq: options.seq ?? 256,
    steps: options.steps ?? 3,
    layers: options.layers ?? 0,
    activationCheckpointing: options.activationCheckpointing ?? false,
    targetModules: options.targetModules ?? null,
    runStep: options.runStep ?? 0,
    runSteps: options.runSteps ?? 100,
  };
  if (!(Number.isInteger(o.runStep) && o.runStep >= 0 && o.runStep + o.steps <= o.runSteps))
    throw new ConfigError(
      `bench train: --run-step must be an integer in [0, ${o.runSteps - o.steps}] (the warm-up and ${o.steps} timed steps within --run-steps ${o.runSteps}), found ${o.runStep}`,
    );
  const tuner = tuners.get(o.method);
  const tunerConfig = tuner.fromOptions(tunerOptions(tuner, o.targetModules), { seed: 0 });
  // as the trainer: bf16-mixed with a tuner that freezes the base builds it in bf16 directly
  o.dtype = baseStorageDtype(o.precision, o.dtype, tuner);
  const model = buildModel(o);
  // the tuner's own defaults (LoRA: PEFT's r 8 on q_proj, v_proj); a bf16 base it cannot train is its error
  const baseParameters = new Set(model.parameters());
  const adapter = tuner.apply(model, tunerConfig);
  applyTrainPrecision(model, o.precision, baseParameters);
  model.activationCheckpointing = o.activationCheckpointing;
  model.train();
  const params = adapter.trainableParameters();
  const optimizer = new AdamW(params, { lr: 1e-4, weightDecay: 0 });
  const loss = createLoss('ce');
  const rng = new Rng(1);
  const vocab = TRAIN_PRESETS[o.preset].vocabSize;
  let stepsDone = 0;
  const step = () => {
    const ids = Int32Array.from({ length: o.batch * o.seq }, () => rng.int(vocab));
    const inputIds = fromArray(ids, [o.batch, o.seq], { dtype: 'i32', track: false });
    const labels = fromArray(ids, [o.batch, o.seq], { dtype: 'i32', track: false });
    // as the trainer orders them (train/trainer.ts), when a run step is given
    const [s, total] = [o.runStep === 0 ? 0 : o.runStep + stepsDone, o.runSteps];
    stepsDone++;
    if (s > 0) adapter.beginStep?.(s, total);
    forwardBackwardStep(model, loss, [{ inputIds, labels }]);
    if (s > 0) adapter.afterBackward?.(s, total);
    optimizer.step();
    if (s > 0) adapter.afterStep?.(s, total, optimizer);
    optimizer.zeroGrad();
    inputIds.dispose();
    labels.dispose();
  };
  step(); // warm-up: pool buffers, JIT
  const started = performance.now();
  for (let i = 0; i < o.steps; i++) step();
  const stepSeconds = (performance.now() - started) / 1000 / o.steps;
  const info = backendInfo();
  return envelope('train', info.active, info.threads, [
    {
      kernel: 'train_step',
      backend: info.active,
      preset: o.preset,
      method: o.method,
      dtype: o.dtype,
      precision: o.precision,
      // the base matrices' GEMM: qgemm (dequantised tile by tile) for a quantised base
      gemm_path: isQuantFormat(o.dtype) ? `qgemm:${o.dtype}` : gemmPathOf(o.precision),
      activation_checkpointing: o.activationCheckpointing,
      target_modules: o.targetModules === null ? 'default' : [o.targetModules].flat().join(','),
      run_step: o.runStep === 0 ? null : `${o.runStep}/${o.runSteps}`,
      layers: o.layers > 0 ? o.layers : TRAIN_PRESETS[o.preset].numLayers,
      batch: o.batch,
      seq: o.seq,
      steps: o.steps,
      trainable_params: params.reduce((s, p) => s + p.size, 0),
      tokens_per_s: (o.batch * o.seq) / stepSeconds,
      step_s: stepSeconds,
      peak_rss_mb: peakRssMb(),
    },
  ]);
}
