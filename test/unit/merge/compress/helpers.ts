/** Temp folders, tiny models and LoRA adapters shared by the compress / port tests. */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliIO, captureIO } from '../../../../src/cli/io.ts';
import { main } from '../../../../src/cli/main.ts';
import { openCheckpoint, openSafetensors } from '../../../../src/io/index.ts';
import { loadModel, saveModel } from '../../../../src/models/index.ts';
import { applyLora, type LoraConfig } from '../../../../src/peft/index.ts';
import { Rng } from '../../../../src/tensor/index.ts';
import { writeTinyModel } from '../../../helpers/tiny-run.ts';

const made: string[] = [];

/** A fresh temp folder (removed by `cleanup`). */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-compress-'));
  made.push(dir);
  return dir;
}

/** Remove every temp folder made. */
export function cleanup(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A random tiny llama (hidden 32 unless given, 2 layers, byte tokenizer) in `dir`. */
export function tinyModel(dir: string, options: { seed?: number; hidden?: number } = {}): string {
  return writeTinyModel(dir, { seed: options.seed ?? 1, hidden: options.hidden });
}

/** A copy of `baseDir` with every weight moved by `scale` N(0, 1) noise. */
export function tunedVariant(baseDir: string, dir: string, seed: number, scale = 0.02): string {
  const loaded = loadModel(baseDir);
  const rng = new Rng(seed);
  for (const [, p] of loaded.model.namedParameters()) {
    const data = p.data as Float32Array;
    for (let i = 0; i < data.length; i++) data[i] = data[i]! + scale * rng.normal();
  }
  saveModel(loaded.model, dir, { tokenizer: loaded.tokenizer, generationConfig: loaded.generationConfig });
  return dir;
}

/**
 * A LoRA adapter on `baseDir` with A and B filled by hand with seeded N(0, scale^2) values (B
 * non-zero), saved in `dir`.
 */
export function loraAdapter(
  baseDir: string,
  dir: string,
  seed: number,
  config: LoraConfig = { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] },
  scale = 0.1,
): string {
  const loaded = loadModel(baseDir);
  const adapter = applyLora(loaded.model, config);
  const rng = new Rng(seed);
  for (const [name, p] of loaded.model.namedParameters()) {
    if (name.includes('.lora_')) {
      const data = p.data as Float32Array;
      for (let i = 0; i < data.length; i++) data[i] = scale * rng.normal();
    }
  }
  adapter.save(dir, { baseModelNameOrPath: baseDir });
  return dir;
}

/** Every tensor of a safetensors file or model dir as f32 arrays by name. */
export function tensorsOf(path: string, file = false): Map<string, Float32Array> {
  const reader = file ? openSafetensors(path) : openCheckpoint(path);
  try {
    return new Map(reader.names().map((n) => [n, reader.read(n, { dtype: 'f32' }).data as Float32Array]));
  } finally {
    reader.close();
  }
}

/** Whether `dir` is absent or empty. */
export function nothingIn(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch {
    return true;
  }
}

/** The parsed --json object (any: tests read its fields freely). */
// biome-ignore lint/suspicious/noExplicitAny: a test's view of arbitrary JSON
export type CliJson = any;

/** Run the CLI; returns the status, stdout, stderr and the parsed last stdout line when it is JSON. */
export async function runCli(
  argv: string[],
): Promise<{ status: number; stdout: string; stderr: string; json: CliJson }> {
  const { io, stdout, stderr } = captureIO();
  const status = await main(argv, io as CliIO);
  const lines = stdout().trimEnd().split('\n');
  let json: unknown = null;
  try {
    json = JSON.parse(lines[lines.length - 1]!);
  } catch {
    json = null;
  }
  return { status, stdout: stdout(), stderr: stderr(), json };
}
