/**
 * `attune bench generate`: greedy decoding speed of a model folder (or a preset shape with random
 * weights) with the KV cache, as ../shared/anchors/torch_generate_bench.py measures it: a random
 * prompt of `prompt` tokens per sequence (prefill), then `new - 1` single-token steps for `batch`
 * sequences together (decode). The memory-bandwidth limit is the weight bytes read per decode step
 * over the read bandwidth this machine measures (the best of a few passes summing a buffer larger
 * than the caches): decoding cannot be faster than reading every weight once per step.
 */
import { backendInfo } from '../backend/index.ts';
import {
  type CausalLM,
  createModel,
  llamaConfigJson,
  loadModel,
  type WeightStorage,
} from '../models/index.ts';
import { QuantizedParameter } from '../nn/index.ts';
import { fromArray, isQuantFormat, noGrad, Rng, scope, sum, Tensor } from '../tensor/index.ts';
import type { TrainPrecision } from '../train/precision.ts';
import { type BenchEnvelope, envelope } from './envelope.ts';
import { gemmPathOf, peakRssMb, TRAIN_PRESETS } from './train.ts';

export interface GenerateBenchOptions {
  /** A model folder, or a preset name (random weights in that shape). */
  model: string;
  dtype?: WeightStorage;
  /** Compute precision (default f32); bf16-mixed stores the weight matrices in bf16 too. */
  precision?: TrainPrecision;
  batch?: number;
  prompt?: number;
  new?: number;
}

/** Read bandwidth in bytes/s: the best of `passes` sums over a 256 MB f32 buffer. */
export function measureReadBandwidth(passes = 3): number {
  const n = 64 * 1024 * 1024;
  const buf = Tensor.alloc([n], 'f32', false, { track: false });
  (buf.data as Float32Array).fill(1);
  let best = Number.POSITIVE_INFINITY;
  try {
    for (let i = 0; i < passes; i++) {
      const t0 = performance.now();
      scope(() => sum(buf).floatData()[0]);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
  } finally {
    buf.release();
  }
  return (n * 4) / best;
}

/** The storage of the weights: int8 / nf4 as asked, bf16 under bf16-mixed, else the dtype asked for. */
function storageDtype(o: GenerateBenchOptions): WeightStorage {
  if (o.dtype !== undefined && isQuantFormat(o.dtype)) return o.dtype;
  return o.precision === 'bf16-mixed' ? 'bf16' : (o.dtype ?? 'f32');
}

function openModel(o: GenerateBenchOptions): CausalLM {
  const preset = TRAIN_PRESETS[o.model as keyof typeof TRAIN_PRESETS];
  const dtype = storageDtype(o);
  const model = preset
    ? createModel(llamaConfigJson({ ...preset }), { seed: 0, dtype })
    : loadModel(o.model, { dtype }).model;
  return model.setComputePrecision(o.precision === 'bf16-mixed' ? 'bf16' : 'f32');
}

/** Bytes of every parameter in its storage dtype (what one decode step reads). */
function weightBytes(model: CausalLM): number {
  const size = { f32: 4, bf16: 2, f64: 8, i32: 4 } as Record<string, number>;
  return model
    .namedParameters()
    .reduce(
      (s, [, p]) => s + (p instanceof QuantizedParameter ? p.quantized.bytes : p.size * (size[p.dtype] ?? 4)),
      0,
    );
}

/** Run the bench; one row in the bench envelope. */
export function runGenerateBench(o: GenerateBenchOptions): BenchEnvelope {
  const batch = o.batch ?? 1;
  const promptLen = o.prompt ?? 32;
  const newTokens = o.new ?? 64;
  const precision = o.precision ?? 'f32';
  const tLoad = performance.now();
  const model = openModel(o);
  const loadSeconds = (performance.now() - tLoad) / 1000;
  const V = model.config.vocabSize;
  const rng = new Rng(0);
  const prompt = Array.from({ length: batch * promptLen }, () => 3 + Math.floor(rng.uniform() * (V - 3)));
  const caches = Array.from({ length: batch }, () => model.createKvCache(promptLen + newTokens));
  const cache = batch === 1 ? caches[0]! : caches;
  const argmaxLast = (logits: Tensor, T: number): number[] => {
    const d = logits.floatData();
    return Array.from({ length: batch }, (_, b) => {
      const row = (b * T + T - 1) * V;
      let best = 0;
      for (let j = 1; j < V; j++) if (d[row + j]! > d[row + best]!) best = j;
      return best;
    });
  };
  let t0 = 0;
  let t1 = 0;
  let t2 = 0;
  noGrad(() => {
    t0 = performance.now();
    let next = scope(() =>
      argmaxLast(
        model.logits(model.forwardHidden(fromArray(prompt, [batch, promptLen], { dtype: 'i32' }), { cache })),
        promptLen,
      ),
    );
    t1 = performance.now();
    for (let s = 0; s < newTokens - 1; s++)
      next = scope(() =>
        argmaxLast(
          model.logits(model.forwardHidden(fromArray(next, [batch, 1], { dtype: 'i32' }), { cache })),
          1,
        ),
      );
    t2 = performance.now();
  });
  const bytes = weightBytes(model);
  const peak = peakRssMb(); // before the bandwidth buffer
  const bandwidth = measureReadBandwidth();
  const decode = (batch * (newTokens - 1)) / ((t2 - t1) / 1000);
  // every decode step reads all weights once, whatever the batch
  const limit = (bandwidth / bytes) * batch;
  const info = backendInfo();
  return envelope('generate', info.active, info.threads, [
    {
      kernel: 'greedy-decode',
      backend: info.active,
      model: o.model,
      dtype: storageDtype(o),
      precision,
      gemm_path: isQuantFormat(storageDtype(o)) ? `qgemm:${storageDtype(o)}` : gemmPathOf(precision),
      batch,
      prompt_len: promptLen,
      new: newTokens,
      load_s: loadSeconds,
      prefill_tokens_per_s: (batch * promptLen) / ((t1 - t0) / 1000),
      decode_tokens_per_s: decode,
      weight_bytes: bytes,
      read_gb_per_s: bandwidth / 1e9,
      limit_tokens_per_s: limit,
      ratio_to_limit: decode / limit,
      peak_rss_mb: peak,
    },
  ]);
}
