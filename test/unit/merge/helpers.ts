/** Tiny model dirs, adapters and configs shared by the merge/ tests. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/io/index.ts';
import { type MergeConfig, validateMergeConfig } from '../../../src/merge/index.ts';
import { type CausalLM, loadModel, saveModel } from '../../../src/models/index.ts';
import { applyLora } from '../../../src/peft/index.ts';
import { Rng } from '../../../src/tensor/index.ts';
import { writeTinyModel } from '../../helpers/tiny-run.ts';

const made: string[] = [];

/** A fresh temp folder (removed by `cleanup`). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-merge-'));
  made.push(dir);
  return dir;
}

/** Remove every temp folder made. */
export function cleanup(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A random tiny llama (byte tokenizer, hidden 32 unless given, 2 layers, tied embeddings) in `dir`. */
export function tinyModel(
  dir: string,
  options: { seed?: number; hidden?: number; layers?: number } = {},
): string {
  return writeTinyModel(dir, { seed: options.seed ?? 1, hidden: options.hidden, layers: options.layers });
}

/** Rewrite every parameter of a loaded model as value + scale * N(0, 1) (seeded). */
export function perturb(model: CausalLM, seed: number, scale: number): void {
  const rng = new Rng(seed);
  for (const [, p] of model.namedParameters()) {
    const data = p.data as Float32Array;
    for (let j = 0; j < data.length; j++) data[j] = data[j]! + scale * rng.normal();
  }
}

/** A "fine-tuned" copy of `baseDir`: every weight perturbed by `scale` N(0, 1) noise. */
export function variant(baseDir: string, dir: string, seed: number, scale = 0.05): string {
  const loaded = loadModel(baseDir);
  perturb(loaded.model, seed, scale);
  saveModel(loaded.model, dir, { tokenizer: loaded.tokenizer, generationConfig: loaded.generationConfig });
  return dir;
}

/** A LoRA adapter (r 4, alpha 8, q_proj + v_proj) with random A and B, saved in `dir`. */
export function loraAdapter(baseDir: string, dir: string, seed: number): string {
  const loaded = loadModel(baseDir);
  const adapter = applyLora(loaded.model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] });
  const rng = new Rng(seed);
  for (const [name, p] of loaded.model.namedParameters()) {
    if (name.includes('.lora_')) p.fillWith(() => 0.1 * rng.normal());
  }
  adapter.save(dir);
  return dir;
}

/** Validate a config object as if it were a YAML file in `dir`. */
export function config(raw: Record<string, unknown>, dir: string): MergeConfig {
  return validateMergeConfig(raw, join(dir, 'merge.yaml'), dir);
}

/** Write a YAML file. */
export function writeYaml(path: string, text: string): string {
  writeFileSync(path, text);
  return path;
}

/** Every tensor of a model dir's checkpoint as f32 arrays by name. */
export function tensorsOf(dir: string): Map<string, Float32Array> {
  const reader = openCheckpoint(dir);
  try {
    return new Map(reader.names().map((n) => [n, reader.read(n, { dtype: 'f32' }).data as Float32Array]));
  } finally {
    reader.close();
  }
}

/** max |a - b| over two tensor maps with the same names (throws on a name or size mismatch). */
export function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  if ([...a.keys()].sort().join() !== [...b.keys()].sort().join()) throw new Error('different tensor names');
  let d = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    if (x.length !== y.length) throw new Error(`'${name}': sizes differ`);
    for (let j = 0; j < x.length; j++) d = Math.max(d, Math.abs(x[j]! - y[j]!));
  }
  return d;
}
