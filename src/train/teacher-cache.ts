/**
 * A teacher's top-k cache for distillation (FIRST): for every supervised position of every training
 * example, the teacher's k most likely token ids and their log-probs, computed once and written as
 * one safetensors file — k entries per token, never [tokens, vocab]:
 *   ids i32 [N, k], logprobs f32 [N, k] (descending), positions i32 [N] (the predicted token's
 *   position in its example), targets i32 [N] (the gold token there), offsets i32 [E + 1] (example
 *   e owns rows offsets[e] .. offsets[e+1]).
 * Its header (`__metadata__.attune_teacher_cache`, JSON) records what it was built from: hashes of
 * the teacher's files, the adapter and the data file, k, the data options and a fingerprint of the
 * tokenizer's vocabulary. A cache used with other data or another vocabulary is refused.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenizedExample } from '../data/index.ts';
import { ConfigError, FormatError } from '../errors.ts';
import { openSafetensors, type Tokenizer, writeSafetensors } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { embedding, fromArray, noGrad, reshape, scope, type Tensor } from '../tensor/index.ts';

/** The cache file's format tag (in `__metadata__.format`). */
export const TEACHER_CACHE_FORMAT = 'attune-teacher-cache';
const HEADER_KEY = 'attune_teacher_cache';

/** What a cache was built from (its JSON header). */
export interface TeacherCacheHeader {
  version: 1;
  k: number;
  /** The teacher model directory and the sha256 of its config.json and weight files. */
  teacher_model: string;
  teacher_model_hash: string;
  /** The teacher's adapter directory and its hash (null when none). */
  adapter: string | null;
  adapter_hash: string | null;
  /** The training JSONL and its sha256. */
  data_file: string;
  data_hash: string;
  /** Tokenization options that change the tokens (max_length, train_on, ...), as given. */
  data_options: Record<string, unknown>;
  /** sha256 of the tokenizer's vocabulary (id -> token) and its size. */
  tokenizer_fingerprint: string;
  vocab_size: number;
  examples: number;
  tokens: number;
}

/** sha256 (hex) of the vocabulary `id\ttoken\n` for every id: two tokenizers agree iff their vocabularies do. */
export function tokenizerFingerprint(tokenizer: Pick<Tokenizer, 'vocabSize' | 'idToToken'>): string {
  const hash = createHash('sha256');
  for (let id = 0; id < tokenizer.vocabSize; id++) hash.update(`${id}\t${tokenizer.idToToken(id) ?? ''}\n`);
  return hash.digest('hex');
}

/** sha256 (hex) of a file. */
export function fileHash(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** sha256 (hex) over the config / weight / adapter files of a model or adapter directory (name + content). */
export function directoryHash(dir: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new ConfigError(`teacher: ${dir} is not a directory`);
  const hash = createHash('sha256');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json') || f.endsWith('.safetensors'))
    .sort();
  for (const f of files) {
    hash.update(`${f}\0`);
    hash.update(readFileSync(join(dir, f)));
  }
  return hash.digest('hex');
}

/** The k largest values of `row` (ties: lower id first), descending: ids and values. */
export function topK(row: ArrayLike<number>, k: number): { ids: Int32Array; values: Float64Array } {
  const ids = new Int32Array(k).fill(-1);
  const values = new Float64Array(k).fill(Number.NEGATIVE_INFINITY);
  for (let v = 0; v < row.length; v++) {
    const x = row[v]!;
    if (!(x > values[k - 1]!)) continue;
    let j = k - 1;
    while (j > 0 && x > values[j - 1]!) {
      values[j] = values[j - 1]!;
      ids[j] = ids[j - 1]!;
      j--;
    }
    values[j] = x;
    ids[j] = v;
  }
  return { ids, values };
}

/** Supervised positions t >= 1 (labels[t] != -100) of one example, ascending. */
function supervisedPositions(example: Pick<TokenizedExample, 'labels'>): number[] {
  const out: number[] = [];
  for (let t = 1; t < example.labels.length; t++) if (example.labels[t] !== -100) out.push(t);
  return out;
}

/** Options of `buildTeacherCache`. */
export interface BuildTeacherCacheOptions {
  /** The teacher (adapter applied), in eval mode. */
  teacher: CausalLM;
  /** The training examples, tokenized as the student's trainer tokenizes them. */
  examples: readonly TokenizedExample[];
  k: number;
  /** Where to write the cache (atomically). */
  path: string;
  /** Everything of the header but k, vocab_size, examples and tokens. */
  header: Omit<TeacherCacheHeader, 'version' | 'k' | 'vocab_size' | 'examples' | 'tokens'>;
  /** Positions sent through the LM head at once (default 64). */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Run the teacher over every example and write its top-k log-probs at the supervised positions.
 * The LM head sees `chunk` positions at a time, so memory is chunk x vocab, not tokens x vocab.
 */
export function buildTeacherCache(options: BuildTeacherCacheOptions): TeacherCacheHeader {
  const { teacher, examples, k, path } = options;
  const V = teacher.config.vocabSize;
  if (!Number.isInteger(k) || k < 1 || k > V)
    throw new ConfigError(`teacher.k: expected an integer in [1, ${V}] (the vocabulary size), got ${k}`);
  const chunk = options.chunk ?? 64;
  const offsets = new Int32Array(examples.length + 1);
  let total = 0;
  examples.forEach((e, i) => {
    offsets[i] = total;
    total += supervisedPositions(e).length;
  });
  offsets[examples.length] = total;
  const ids = new Int32Array(total * k);
  const logprobs = new Float32Array(total * k);
  const positions = new Int32Array(total);
  const targets = new Int32Array(total);
  const wasTraining = teacher.training;
  teacher.eval();
  try {
    noGrad(() => {
      examples.forEach((example, e) => {
        const sup = supervisedPositions(example);
        if (sup.length === 0) return;
        scope(() => {
          const T = example.inputIds.length;
          const hidden = reshape(
            teacher.forwardHidden(fromArray(Int32Array.from(example.inputIds), [1, T], { dtype: 'i32' })),
            [T, teacher.config.hiddenSize],
          );
          for (let start = 0; start < sup.length; start += chunk) {
            const part = sup.slice(start, start + chunk);
            scope(() => {
              const rows = fromArray(
                Int32Array.from(part, (t) => t - 1),
                [part.length],
                { dtype: 'i32' },
              );
              const logits = teacher.logits(embedding(hidden, rows)) as Tensor;
              const z = logits.floatData();
              for (let j = 0; j < part.length; j++) {
                const row = z.subarray(j * V, (j + 1) * V);
                let m = Number.NEGATIVE_INFINITY;
                for (let v = 0; v < V; v++) if (row[v]! > m) m = row[v]!;
                let s = 0;
                for (let v = 0; v < V; v++) s += Math.exp(row[v]! - m);
                const lse = m + Math.log(s);
                const top = topK(row, k);
                const r = offsets[e]! + start + j;
                for (let i = 0; i < k; i++) {
                  ids[r * k + i] = top.ids[i]!;
                  logprobs[r * k + i] = top.values[i]! - lse;
                }
                positions[r] = part[j]!;
                targets[r] = example.labels[part[j]!]!;
              }
            });
          }
        });
        options.onProgress?.(e + 1, examples.length);
      });
    });
  } finally {
    teacher.train(wasTraining);
  }
  const header: TeacherCacheHeader = {
    version: 1,
    k,
    ...options.header,
    vocab_size: V,
    examples: examples.length,
    tokens: total,
  };
  writeSafetensors(
    path,
    {
      ids: fromArray(ids, [total, k], { dtype: 'i32' }),
      logprobs: fromArray(logprobs, [total, k]),
      positions: fromArray(positions, [total], { dtype: 'i32' }),
      targets: fromArray(targets, [total], { dtype: 'i32' }),
      offsets: fromArray(offsets, [examples.length + 1], { dtype: 'i32' }),
    },
    { format: TEACHER_CACHE_FORMAT, [HEADER_KEY]: JSON.stringify(header) },
  );
  return header;
}

/** A loaded teacher cache: the top-k rows and a lookup by (example, position). */
export class TeacherCache {
  constructor(
    readonly path: string,
    readonly header: TeacherCacheHeader,
    readonly ids: Int32Array,
    readonly logprobs: Float32Array,
    readonly positions: Int32Array,
    readonly targets: Int32Array,
    readonly offsets: Int32Array,
  ) {}

  get k(): number {
    return this.header.k;
  }

  /** The cache row of the token at `position` of example `example`, or -1 when it has none. */
  rowOf(example: number, position: number): number {
    if (example < 0 || example + 1 >= this.offsets.length) return -1;
    let lo = this.offsets[example]!;
    let hi = this.offsets[example + 1]! - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const p = this.positions[mid]!;
      if (p === position) return mid;
      if (p < position) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /**
   * Refuse the cache unless it was built for exactly this data and vocabulary: the student's
   * vocabulary fingerprint and size, the number of examples, and every example's supervised
   * positions and gold tokens must match.
   */
  verify(data: {
    examples: readonly (Pick<TokenizedExample, 'labels'> &
      Partial<Pick<TokenizedExample, 'file' | 'line'>>)[];
    vocabSize: number;
    tokenizer: Pick<Tokenizer, 'vocabSize' | 'idToToken' | 'origin'>;
    trainFile?: string;
  }): void {
    const where = `teacher cache ${this.path}`;
    const h = this.header;
    if (h.vocab_size !== data.vocabSize)
      throw new ConfigError(
        `${where} was built for vocab_size ${h.vocab_size} (teacher ${h.teacher_model}) but the student has ${data.vocabSize}: teacher and student must share the vocabulary`,
      );
    const fp = tokenizerFingerprint(data.tokenizer);
    if (fp !== h.tokenizer_fingerprint)
      throw new ConfigError(
        `${where} was built with another tokenizer than the student's (${data.tokenizer.origin}): vocabulary fingerprint ${h.tokenizer_fingerprint.slice(0, 12)} vs ${fp.slice(0, 12)}; rebuild it with 'attune distill'`,
      );
    const file = data.trainFile ?? 'the training data';
    if (h.examples !== data.examples.length)
      throw new ConfigError(
        `${where} was built from ${h.data_file} (${h.examples} examples) but ${file} has ${data.examples.length}: a cache fits only the data it was built from; rebuild it`,
      );
    data.examples.forEach((example, e) => {
      const sup = supervisedPositions(example);
      const start = this.offsets[e]!;
      const count = this.offsets[e + 1]! - start;
      const at = example.file ? ` (${example.file}:${example.line})` : '';
      if (count !== sup.length)
        throw new ConfigError(
          `${where}: example ${e}${at} has ${sup.length} supervised tokens in ${file} but ${count} in the cache (built from ${h.data_file}): other data or tokenization; rebuild it`,
        );
      for (let i = 0; i < count; i++) {
        const t = sup[i]!;
        if (this.positions[start + i] !== t || this.targets[start + i] !== example.labels[t])
          throw new ConfigError(
            `${where}: example ${e}${at} position ${t}: gold token ${example.labels[t]} in ${file} but ${this.targets[start + i]} at position ${this.positions[start + i]} in the cache (built from ${h.data_file}): other data or tokenization; rebuild it`,
          );
      }
    });
  }
}

function readHeader(path: string, meta: Record<string, string>): TeacherCacheHeader {
  if (meta.format !== TEACHER_CACHE_FORMAT || typeof meta[HEADER_KEY] !== 'string')
    throw new FormatError(
      path,
      `not a teacher cache (expected __metadata__.format '${TEACHER_CACHE_FORMAT}')`,
    );
  let header: TeacherCacheHeader;
  try {
    header = JSON.parse(meta[HEADER_KEY]!) as TeacherCacheHeader;
  } catch (error) {
    throw new FormatError(path, `teacher cache header is not JSON (${(error as Error).message})`);
  }
  if (header.version !== 1)
    throw new FormatError(path, `teacher cache version ${header.version}, expected 1`);
  for (const f of ['k', 'vocab_size', 'examples', 'tokens'] as const)
    if (!Number.isInteger(header[f]) || header[f] < 0)
      throw new FormatError(
        path,
        `teacher cache header field '${f}' must be a non-negative integer, got ${header[f]}`,
      );
  return header;
}

/** Open and validate a teacher cache (shapes, offsets, ids in the vocabulary, finite log-probs <= 0). */
export function openTeacherCache(path: string): TeacherCache {
  const reader = openSafetensors(path);
  try {
    const header = readHeader(path, reader.metadata());
    const { k, tokens: N, examples: E, vocab_size: V } = header;
    const expect: Record<string, [number[], string]> = {
      ids: [[N, k], 'I32'],
      logprobs: [[N, k], 'F32'],
      positions: [[N], 'I32'],
      targets: [[N], 'I32'],
      offsets: [[E + 1], 'I32'],
    };
    for (const [name, [shape, dtype]] of Object.entries(expect)) {
      if (!reader.has(name)) throw new FormatError(path, `teacher cache has no tensor '${name}'`);
      const info = reader.info(name);
      if (info.dtype !== dtype || info.shape.join(',') !== shape.join(','))
        throw new FormatError(
          path,
          `tensor '${name}': expected ${dtype} [${shape.join(', ')}], found ${info.dtype} [${info.shape.join(', ')}]`,
        );
    }
    const read = (name: string) => reader.read(name).data;
    const ids = read('ids') as Int32Array;
    const logprobs = read('logprobs') as Float32Array;
    const offsets = read('offsets') as Int32Array;
    if (offsets[0] !== 0 || offsets[E] !== N)
      throw new FormatError(
        path,
        `tensor 'offsets' must run from 0 to ${N}, found ${offsets[0]} .. ${offsets[E]}`,
      );
    for (let e = 0; e < E; e++)
      if (offsets[e + 1]! < offsets[e]!)
        throw new FormatError(path, `tensor 'offsets' decreases at example ${e}`);
    for (let i = 0; i < ids.length; i++) {
      if (ids[i]! < 0 || ids[i]! >= V)
        throw new FormatError(
          path,
          `tensor 'ids' row ${Math.floor(i / k)}: id ${ids[i]} is outside the vocabulary [0, ${V})`,
        );
      if (!Number.isFinite(logprobs[i]!) || logprobs[i]! > 1e-4)
        throw new FormatError(
          path,
          `tensor 'logprobs' row ${Math.floor(i / k)}: ${logprobs[i]} is not a log-probability`,
        );
    }
    return new TeacherCache(
      path,
      header,
      ids,
      logprobs,
      read('positions') as Int32Array,
      read('targets') as Int32Array,
      offsets,
    );
  } finally {
    reader.close();
  }
}
