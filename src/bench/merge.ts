/**
 * `attune bench merge`: streaming merges of random Llama-shaped checkpoints written to a temp dir
 * (tensor by tensor, so building them holds no whole model either). For each preset and method it
 * reports seconds, the peak bytes of tensor data the merge held, the largest tensor and the
 * streaming bound (inputs + 1) x largest, and the process's peak RSS (VmHWM: a high-water mark over
 * the whole process, so run one bench per process to compare RSS).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendInfo } from '../backend/index.ts';
import { UsageError } from '../errors.ts';
import { CONFIG_FILE, SAFETENSORS_FILE, writeJsonAtomic } from '../io/index.ts';
import { mergeMethods, runMerge, StreamingSafetensorsWriter, validateMergeConfig } from '../merge/index.ts';
import { llamaConfigJson } from '../models/index.ts';
import { Rng } from '../tensor/index.ts';
import { type BenchEnvelope, type BenchRow, envelope } from './envelope.ts';
import { peakRssMb } from './train.ts';

/** Model shapes of the bench. */
export const MERGE_PRESETS = {
  tiny: { vocabSize: 512, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2 },
  medium: {
    vocabSize: 8192,
    hiddenSize: 512,
    intermediateSize: 1408,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 4,
  },
} as const;

/** Methods the bench times: every registered method with a `bench` recipe (on the base plus its models). */
export const MERGE_BENCH_METHODS: readonly string[] = mergeMethods
  .list()
  .filter((m) => m.bench)
  .map((m) => m.name);

/** Options of `runMergeBench`. */
export interface MergeBenchOptions {
  presets?: (keyof typeof MERGE_PRESETS)[];
  methods?: string[];
}

type Shape = (typeof MERGE_PRESETS)[keyof typeof MERGE_PRESETS];

/** Tensor names and shapes of an untied Llama checkpoint of `shape`. */
export function llamaTensorShapes(shape: Shape): [string, number[]][] {
  const { vocabSize: v, hiddenSize: h, intermediateSize: f, numLayers, numHeads, numKvHeads } = shape;
  const head = h / numHeads;
  const out: [string, number[]][] = [['model.embed_tokens.weight', [v, h]]];
  for (let i = 0; i < numLayers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.input_layernorm.weight`, [h]],
      [`${p}.self_attn.q_proj.weight`, [numHeads * head, h]],
      [`${p}.self_attn.k_proj.weight`, [numKvHeads * head, h]],
      [`${p}.self_attn.v_proj.weight`, [numKvHeads * head, h]],
      [`${p}.self_attn.o_proj.weight`, [h, numHeads * head]],
      [`${p}.post_attention_layernorm.weight`, [h]],
      [`${p}.mlp.gate_proj.weight`, [f, h]],
      [`${p}.mlp.up_proj.weight`, [f, h]],
      [`${p}.mlp.down_proj.weight`, [h, f]],
    );
  }
  out.push(['model.norm.weight', [h]], ['lm_head.weight', [v, h]]);
  return out;
}

/** Write a random checkpoint: base values N(0, 0.02) from `baseSeed`, plus N(0, 0.002) noise from `noiseSeed` (0: none). */
function writeRandomModel(dir: string, shape: Shape, baseSeed: number, noiseSeed: number): void {
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, CONFIG_FILE), llamaConfigJson({ ...shape, tieWordEmbeddings: false }));
  const tensors = llamaTensorShapes(shape);
  const writer = new StreamingSafetensorsWriter(
    join(dir, SAFETENSORS_FILE),
    tensors.map(([name, s]) => ({ name, dtype: 'F32', shape: s })),
  );
  const byName = new Map(tensors);
  try {
    writer.order.forEach((name, index) => {
      const size = byName.get(name)!.reduce((a, b) => a * b, 1);
      const base = new Rng(baseSeed * 7919 + index);
      const noise = new Rng(noiseSeed * 104729 + index);
      const values = new Float32Array(size);
      for (let j = 0; j < size; j++)
        values[j] = 0.02 * base.normal() + (noiseSeed ? 0.002 * noise.normal() : 0);
      writer.write(name, values);
    });
    writer.finish();
  } catch (error) {
    writer.abort();
    throw error;
  }
}

/** The config of `method`'s bench recipe over the base and `models` (weights 1 / count where it has weights). */
function methodConfig(method: string, models: string[]): Record<string, unknown> {
  const entry = mergeMethods.get(method);
  const recipe = entry.bench;
  if (!recipe)
    throw new UsageError(
      `bench merge: ${method} has no bench recipe (benched: ${MERGE_BENCH_METHODS.join(', ')})`,
    );
  const used = models.slice(0, recipe.models ?? models.length);
  const weight = entry.modelParameters.includes('weight') ? { weight: 1 / used.length } : {};
  return {
    merge_method: method,
    ...(entry.usesBase ? { base_model: 'base' } : {}),
    models: used.map((m) => ({ model: m, parameters: { ...weight, ...recipe.modelParameters } })),
    ...(recipe.parameters ? { parameters: recipe.parameters } : {}),
  };
}

/** Run the merge bench; resolves to the bench envelope, one row per (preset, method). */
export async function runMergeBench(options: MergeBenchOptions = {}): Promise<BenchEnvelope> {
  const presets = options.presets ?? ['tiny', 'medium'];
  const methods = options.methods ?? [...MERGE_BENCH_METHODS];
  const info = backendInfo();
  const rows: BenchRow[] = [];
  const root = mkdtempSync(join(tmpdir(), 'attune-bench-merge-'));
  try {
    for (const preset of presets) {
      const shape = MERGE_PRESETS[preset];
      const dir = join(root, preset);
      writeRandomModel(join(dir, 'base'), shape, 1, 0);
      const models = ['ft1', 'ft2', 'ft3'];
      models.forEach((m, i) => {
        writeRandomModel(join(dir, m), shape, 1, i + 2);
      });
      const params = llamaTensorShapes(shape).reduce((s, [, d]) => s + d.reduce((a, b) => a * b, 1), 0);
      for (const method of methods) {
        const config = validateMergeConfig(methodConfig(method, models), `bench ${method}`, dir);
        const report = runMerge(config, { out: join(dir, `out-${method}`) });
        rmSync(join(dir, `out-${method}`), { recursive: true, force: true });
        rows.push({
          kernel: 'merge',
          backend: info.active,
          preset,
          method,
          params_m: params / 1e6,
          models: report.models,
          inputs: report.inputs,
          tensors: report.tensors,
          passes: report.passes,
          seconds: report.seconds,
          peak_tensor_bytes: report.peakTensorBytes,
          largest_tensor_bytes: report.largestTensorBytes,
          bound_bytes: report.boundBytes,
          within_bound: report.peakTensorBytes <= report.boundBytes,
          peak_rss_mb: peakRssMb(),
        });
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return envelope('merge', info.active, info.threads, rows);
}
