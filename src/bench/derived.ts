/**
 * Bench rows built, without training, from the finished runs of another (method, loss): a soup of
 * its seeds' models, its adapters compressed with ComPEFT. Each is registered here once and shows
 * up in `attune bench methods` whenever the row it starts from ran; the bench evaluates the models
 * a derivation builds exactly as it evaluates trained runs.
 */
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { decompress } from '../merge/compress-decode.ts';
import { compressAdapter, runMerge, selectCompeftAlpha, validateMergeConfig } from '../merge/index.ts';
import { worldParaphraseFile } from '../world/demo.ts';
import type { MethodSpec } from './methods.ts';

/** A finished bench run of one seed. */
export interface FinishedRun {
  seed: number;
  /** The run's output_dir (adapter/ and, for tuners that write one, model/). */
  runDir: string;
}

/** What a derivation gets: the runs it starts from and a folder of its own to write into. */
export interface DerivedContext {
  runs: readonly FinishedRun[];
  base: string;
  worldDir: string;
  /** Empty folder for this derivation's files (kept, so a rerun reuses the row). */
  work: string;
  note?: (text: string) => void;
}

/** One model a derivation built: evaluated as the row's `seed`. */
export interface DerivedModel {
  seed: number;
  modelDir: string;
  adapterDir: string | null;
  /** Bytes a user ships for this model (the compressed file, the merged weights). */
  bytes: number;
}

/** A post-hoc treatment of a (method, loss)'s runs. */
export interface DerivedMethod {
  /** The row's method is `name(from.method)`, its loss `from.loss`. */
  name: string;
  description: string;
  from: MethodSpec;
  build(ctx: DerivedContext): DerivedModel[];
}

const registry: DerivedMethod[] = [];

/** Register a derivation (a later issue's file adds one line). */
export function registerDerivedMethod(d: DerivedMethod): void {
  if (registry.some((x) => x.name === d.name))
    throw new Error(`derived method '${d.name}' is registered twice`);
  registry.push(d);
}

/** The registered derivations, in registration order. */
export function derivedMethods(): readonly DerivedMethod[] {
  return registry;
}

/** The row name of a derivation: `soup(full)`. */
export function derivedRowMethod(d: DerivedMethod): string {
  return `${d.name}(${d.from.method})`;
}

/** Bytes of a file, or of every file under a folder. */
export function bytesOf(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((n, f) => n + bytesOf(join(path, f)), 0);
}

/**
 * Uniform model soups ("Model soups: averaging weights of multiple fine-tuned models improves
 * accuracy without increasing inference time"): the weights of fine-tunes from different seeds
 * averaged (`merge_method: linear`). With three or more seeds, one soup per left-out seed (so the
 * row has a spread); with two, one soup of both.
 */
registerDerivedMethod({
  name: 'soup',
  description: 'uniform soup (weight average) of the full fine-tunes of the other seeds',
  from: { method: 'full', loss: 'ce' },
  build(ctx) {
    const runs = ctx.runs;
    if (runs.length < 2) {
      ctx.note?.('soup: needs at least 2 seeds of full + ce; skipped');
      return [];
    }
    const groups =
      runs.length === 2
        ? [{ seed: runs[0]!.seed, members: runs }]
        : runs.map((left) => ({ seed: left.seed, members: runs.filter((r) => r !== left) }));
    return groups.map((g) => {
      const out = join(ctx.work, `soup-without-seed${g.seed}`);
      if (!existsSync(join(out, 'model.safetensors'))) {
        const config = validateMergeConfig(
          { merge_method: 'linear', models: g.members.map((r) => ({ model: join(r.runDir, 'model') })) },
          'bench soup',
          ctx.work,
        );
        runMerge(config, { out, overwrite: true });
      }
      return {
        seed: g.seed,
        modelDir: out,
        adapterDir: null,
        bytes: bytesOf(join(out, 'model.safetensors')),
      };
    });
  },
});

/**
 * ComPEFT ("ComPEFT: Compression for Communicating Parameter Efficient Updates via Sparsification
 * and Quantization") at its default density, with alpha chosen on held-out data as the paper does:
 * the taught facts in their training paraphrases, which the bench's fine-tuning file does not hold.
 */
registerDerivedMethod({
  name: 'compeft',
  description: 'LoRA adapter compressed with ComPEFT, alpha chosen on held-out paraphrases',
  from: { method: 'lora', loss: 'ce' },
  build(ctx) {
    const heldOut = worldParaphraseFile(ctx.worldDir);
    return ctx.runs.map((r) => {
      const dir = join(ctx.work, `compeft-seed${r.seed}`);
      const adapterDir = join(dir, 'adapter');
      const file = join(dir, 'compressed', 'compeft.bin');
      if (!existsSync(join(adapterDir, 'adapter_config.json'))) {
        rmSync(dir, { recursive: true, force: true });
        const source = join(r.runDir, 'adapter');
        const selection = selectCompeftAlpha({
          adapterDir: source,
          baseDir: ctx.base,
          data: heldOut,
          maxLength: 128,
        });
        ctx.note?.(
          `compeft seed ${r.seed}: alpha ${selection.alpha} (held-out NLL ${selection.candidates.find((c) => c.alpha === selection.alpha)!.loss.toFixed(3)}, uncompressed ${selection.uncompressedLoss.toFixed(3)})`,
        );
        // the header names the source adapter relative to the file, so the file (and the row's
        // adapter_bytes) is the same whatever --out, executor or machine wrote it
        const compressed = join(dir, 'compressed');
        compressAdapter(source, compressed, {
          alpha: selection.alpha,
          recordedSource: relative(compressed, source),
        });
        decompress(file, adapterDir);
      }
      return { seed: r.seed, modelDir: ctx.base, adapterDir, bytes: readFileSync(file).length };
    });
  },
});
