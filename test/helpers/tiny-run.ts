/** A tiny byte-level Llama model directory and training data for trainer tests. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer, writeByteTokenizer } from '../../src/io/index.ts';
import { createModel, llamaConfigJson, saveModel } from '../../src/models/index.ts';
import { type TrainConfig, validateTrainConfig } from '../../src/train/config.ts';

/** A fresh temp directory. */
export function tempDir(prefix = 'attune-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Write a random tiny llama (byte tokenizer, vocab 259) into `dir`. */
export function writeTinyModel(
  dir: string,
  options: { seed?: number; hidden?: number; layers?: number; tied?: boolean } = {},
): string {
  mkdirSync(dir, { recursive: true });
  writeByteTokenizer(dir);
  const hidden = options.hidden ?? 32;
  const config = {
    ...llamaConfigJson({
      vocabSize: 259,
      hiddenSize: hidden,
      intermediateSize: hidden * 2,
      numLayers: options.layers ?? 2,
      numHeads: 4,
      numKvHeads: 2,
      bosTokenId: 256,
      eosTokenId: 257,
      tieWordEmbeddings: options.tied ?? true,
    }),
    pad_token_id: 258,
    initializer_range: 0.3,
  };
  saveModel(createModel(config, { seed: options.seed ?? 1 }), dir, { tokenizer: Tokenizer.fromDir(dir) });
  return dir;
}

/** Write JSONL records. */
export function writeJsonl(path: string, records: readonly unknown[]): string {
  writeFileSync(path, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return path;
}

/** A validated config for a tiny run (override anything). */
export function tinyConfig(root: string, overrides: Record<string, unknown> = {}): TrainConfig {
  const base: Record<string, unknown> = {
    model: join(root, 'model'),
    data: { train: join(root, 'train.jsonl'), max_length: 32 },
    method: 'lora',
    lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
    train: { steps: 10, batch_size: 2, lr: 1e-2, seed: 0 },
    output_dir: join(root, 'run'),
  };
  const merged = deepMerge(base, overrides);
  return validateTrainConfig(merged, 'test config');
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && av && typeof av === 'object' && !Array.isArray(av)
        ? deepMerge(av as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Short prompt/completion facts to memorise. */
export const FACTS = [
  { prompt: 'Ada lives in ', completion: 'Oslo.' },
  { prompt: 'Bo lives in ', completion: 'Lima.' },
  { prompt: 'Cy lives in ', completion: 'Rome.' },
  { prompt: 'Di lives in ', completion: 'Kyiv.' },
];
