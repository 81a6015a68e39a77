/**
 * ComPEFT's scale selection: the paper picks alpha (kept entries become alpha * std * sign) on
 * held-out data rather than fixing it. For each alpha of a grid, the adapter is compressed,
 * decompressed and applied to the base, and the mean NLL of a held-out JSONL file is measured
 * (teacher forced, the trained tokens only); the alpha with the lowest loss wins (ties: the
 * smaller alpha). The uncompressed adapter's loss is reported next to it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLoader, loadDataset, padTokenIdOf } from '../data/index.ts';
import { ConfigError } from '../errors.ts';
import { type CausalLM, loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { evaluateLoss, type MicroBatch } from '../train/step.ts';
import { compressAdapter, DEFAULT_COMPEFT_DENSITY } from './compress.ts';
import { decompress } from './compress-decode.ts';

/** The default grid of alphas (the paper searches a small range of multiples of the std). */
export const DEFAULT_ALPHA_GRID: readonly number[] = [0.5, 1, 2, 3, 4, 5, 6, 8, 10];

export interface AlphaSelectionOptions {
  /** The PEFT adapter to compress. */
  adapterDir: string;
  /** Its base model directory. */
  baseDir: string;
  /** Held-out JSONL ({text}, {prompt, completion}, {messages}, alpaca). */
  data: string;
  density?: number;
  alphas?: readonly number[];
  maxLength?: number;
  batchSize?: number;
}

export interface AlphaSelection {
  alpha: number;
  /** Held-out mean NLL per alpha, in grid order. */
  candidates: { alpha: number; loss: number }[];
  /** Held-out mean NLL of the uncompressed adapter. */
  uncompressedLoss: number;
  density: number;
}

function heldOutLoss(model: CausalLM, batches: readonly MicroBatch[]): number {
  const wasTraining = model.training;
  model.eval();
  try {
    return evaluateLoss(model, batches).loss;
  } finally {
    model.train(wasTraining);
  }
}

/** Choose ComPEFT's alpha for `adapterDir` on held-out data; see the file comment. */
export function selectCompeftAlpha(o: AlphaSelectionOptions): AlphaSelection {
  const alphas = o.alphas ?? DEFAULT_ALPHA_GRID;
  if (alphas.length === 0 || alphas.some((a) => !(a > 0) || !Number.isFinite(a)))
    throw new ConfigError(
      `compress: the alpha grid must be finite numbers > 0, found [${alphas.join(', ')}]`,
    );
  const density = o.density ?? DEFAULT_COMPEFT_DENSITY;
  const loaded = loadModel(o.baseDir);
  if (!loaded.tokenizer)
    throw new ConfigError(`compress: ${o.baseDir} has no tokenizer.json (needed for --data)`);
  const dataset = loadDataset(o.data, loaded.tokenizer, { maxLength: o.maxLength ?? 512 });
  if (dataset.examples.length === 0) throw new ConfigError(`compress: ${o.data} has no usable examples`);
  const loader = new DataLoader(dataset.examples, {
    batchSize: o.batchSize ?? 8,
    seed: 0,
    shuffle: false,
    packing: false,
    maxLength: o.maxLength ?? 512,
    padTokenId: padTokenIdOf(loaded.tokenizer),
  });
  const batches: MicroBatch[] = Array.from({ length: loader.batchesPerEpoch() }, () => {
    const b = loader.next();
    return { inputIds: b.inputIds, labels: b.labels };
  });
  const work = mkdtempSync(join(tmpdir(), 'attune-compeft-alpha-'));
  try {
    const lossWith = (adapterDir: string) => {
      const adapter = loadAdapter(loaded.model, adapterDir);
      try {
        return heldOutLoss(loaded.model, batches);
      } finally {
        adapter.unload();
      }
    };
    const uncompressedLoss = lossWith(o.adapterDir);
    const candidates = alphas.map((alpha, i) => {
      const packed = join(work, `c${i}`);
      compressAdapter(o.adapterDir, packed, { density, alpha });
      decompress(packed, join(work, `a${i}`));
      return { alpha, loss: lossWith(join(work, `a${i}`)) };
    });
    const best = candidates.reduce((b, c) =>
      c.loss < b.loss || (c.loss === b.loss && c.alpha < b.alpha) ? c : b,
    );
    return { alpha: best.alpha, candidates, uncompressedLoss, density };
  } finally {
    for (const b of batches) {
      b.inputIds.dispose();
      b.labels.dispose();
    }
    rmSync(work, { recursive: true, force: true });
  }
}
