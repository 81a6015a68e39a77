/**
 * Write a rendered world to a folder: corpus.txt, pretrain.jsonl, finetune.jsonl, the eval_*.jsonl
 * splits and world.json, each atomically. The bytes depend only on the world, so the same seed
 * and options give byte-identical files.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../io/atomic.ts';
import { writeJsonAtomic } from '../io/json.ts';
import { peopleIn, type World } from './generate.ts';
import { type EvalSplit, type RenderedWorld, renderWorld } from './render.ts';

/** Names of the files writeWorld writes, in the order it writes them (world.json last). */
export const WORLD_FILES = [
  'corpus.txt',
  'pretrain.jsonl',
  'finetune.jsonl',
  'eval_known.jsonl',
  'eval_taught.jsonl',
  'eval_unknown.jsonl',
  'eval_ood.jsonl',
  'eval_mixed.jsonl',
  'world.json',
] as const;

/** What a world holds and renders to, counted. */
export interface WorldCounts {
  people: Record<'known' | 'taught' | 'unknown', number>;
  cities: number;
  countries: number;
  /** Documents of corpus.txt, which are the records of pretrain.jsonl. */
  pretrainDocuments: number;
  /** Records of finetune.jsonl: `qa` prompt/completion pairs and `text` biographies. */
  finetuneRecords: { qa: number; text: number };
  /** Questions per evaluation file. */
  eval: Record<EvalSplit | 'mixed', number>;
}

/** What writeWorld wrote. */
export interface WriteWorldResult {
  out: string;
  counts: WorldCounts;
  /** Size in bytes of each file, by name. */
  files: Record<(typeof WORLD_FILES)[number], number>;
}

/** Records as JSONL: one JSON object per line, each line ending in a newline. */
export function toJsonl(records: readonly unknown[]): string {
  return records.map((r) => `${JSON.stringify(r)}\n`).join('');
}

/** corpus.txt: the documents separated by one blank line, with a final newline. */
export function toCorpusText(documents: readonly string[]): string {
  return `${documents.join('\n\n')}\n`;
}

/** Count what `world` and its rendering hold. */
export function countWorld(world: World, rendered: RenderedWorld): WorldCounts {
  const qa = rendered.finetune.filter((r) => 'prompt' in r).length;
  return {
    people: {
      known: peopleIn(world, 'known').length,
      taught: peopleIn(world, 'taught').length,
      unknown: peopleIn(world, 'unknown').length,
    },
    cities: world.cities.length,
    countries: world.countries.length,
    pretrainDocuments: rendered.pretrain.length,
    finetuneRecords: { qa, text: rendered.finetune.length - qa },
    eval: {
      known: rendered.eval.known.length,
      taught: rendered.eval.taught.length,
      unknown: rendered.eval.unknown.length,
      ood: rendered.eval.ood.length,
      mixed: rendered.eval.mixed.length,
    },
  };
}

/**
 * Render `world` and write its files into `outDir` (created if missing; files of the same names
 * are replaced, other files are left alone). Each file is written atomically. Returns the counts
 * and the size of every file.
 */
export function writeWorld(world: World, outDir: string): WriteWorldResult {
  const rendered = renderWorld(world);
  const texts: Record<(typeof WORLD_FILES)[number], string> = {
    'corpus.txt': toCorpusText(rendered.pretrain),
    'pretrain.jsonl': toJsonl(rendered.pretrain.map((text) => ({ text }))),
    'finetune.jsonl': toJsonl(rendered.finetune),
    'eval_known.jsonl': toJsonl(rendered.eval.known),
    'eval_taught.jsonl': toJsonl(rendered.eval.taught),
    'eval_unknown.jsonl': toJsonl(rendered.eval.unknown),
    'eval_ood.jsonl': toJsonl(rendered.eval.ood),
    'eval_mixed.jsonl': toJsonl(rendered.eval.mixed),
    'world.json': `${JSON.stringify(world, null, 2)}\n`,
  };
  mkdirSync(outDir, { recursive: true });
  const files = {} as Record<(typeof WORLD_FILES)[number], number>;
  for (const name of WORLD_FILES) {
    const path = join(outDir, name);
    if (name === 'world.json') writeJsonAtomic(path, world);
    else writeTextAtomic(path, texts[name]);
    files[name] = Buffer.byteLength(texts[name], 'utf8');
  }
  return { out: outDir, counts: countWorld(world, rendered), files };
}
