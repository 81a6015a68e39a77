/**
 * `attune distill`: a training config plus `teacher: {model, adapter?, k, cache?}`. The teacher's
 * top-k cache for the training data is built once (or reused when its header says it was built
 * from the same teacher, adapter, data, tokenization and k), then the student trains with the
 * `first` loss on it (train/losses/first.ts). Teacher and student must share the vocabulary.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { applyOverrides, readYamlMapping, validateWith } from '../config/yaml.ts';
import { loadDataset } from '../data/index.ts';
import { AttuneError, ConfigError } from '../errors.ts';
import { readJsonObject, readModelConfig, Tokenizer } from '../io/index.ts';
import { checkSameVocabulary, loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { resolveConfigPaths, type TrainConfig, validateTrainConfig } from './config.ts';
import {
  buildTeacherCache,
  directoryHash,
  fileHash,
  openTeacherCache,
  type TeacherCacheHeader,
  tokenizerFingerprint,
} from './teacher-cache.ts';
import { dataOptionsOf, type TrainAsyncOptions, type TrainResult, trainAsync } from './trainer.ts';

/** The `teacher:` section of a distill config. */
export const teacherSchema = z
  .object({
    model: z.string().min(1).describe('the teacher model directory (Hub format)'),
    adapter: z
      .string()
      .nullable()
      .default(null)
      .describe("the teacher's adapter directory (PEFT layout), if any"),
    k: z
      .number()
      .int()
      .positive()
      .default(5)
      .describe("teacher ids cached per supervised token (FIRST's top-k)"),
    cache: z
      .string()
      .nullable()
      .default(null)
      .describe('where the teacher cache goes (default: <output_dir>.teacher-top<k>.safetensors)'),
  })
  .strict();

export type TeacherSpec = z.output<typeof teacherSchema>;

/** A validated distill config: the student's training config (loss `first` on the cache) and the teacher. */
export interface DistillConfig {
  train: TrainConfig;
  teacher: TeacherSpec;
  /** The cache path the `first` loss reads. */
  cachePath: string;
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/**
 * Validate a parsed distill config (`raw`: the train config fields plus `teacher`). Paths are
 * relative to `baseDir`. The loss is `first` (its options may be given under `loss`), with its cache
 * set to the teacher cache; any other loss is an error.
 */
export function validateDistillConfig(
  raw: Record<string, unknown>,
  where: string,
  baseDir: string,
): DistillConfig {
  const { teacher: rawTeacher, ...rest } = raw;
  if (rawTeacher === undefined)
    throw new ConfigError(`${where}: teacher: missing; a distill config needs teacher: {model, adapter?, k}`);
  const teacher = validateWith(teacherSchema, rawTeacher, `${where}: teacher`);
  teacher.model = resolvePath(baseDir, teacher.model);
  if (teacher.adapter) teacher.adapter = resolvePath(baseDir, teacher.adapter);
  const outputDir = typeof rest.output_dir === 'string' ? resolvePath(baseDir, rest.output_dir) : null;
  if (!outputDir) throw new ConfigError(`${where}: output_dir: missing (the student's run directory)`);
  const cachePath = teacher.cache
    ? resolvePath(baseDir, teacher.cache)
    : `${outputDir.replace(/\/+$/, '')}.teacher-top${teacher.k}.safetensors`;
  const rawLoss = rest.loss ?? 'first';
  const loss = typeof rawLoss === 'string' ? { name: rawLoss } : (rawLoss as Record<string, unknown>);
  if (loss.name !== 'first')
    throw new ConfigError(`${where}: loss: distill trains with loss 'first', got '${String(loss.name)}'`);
  if (loss.cache !== undefined)
    throw new ConfigError(`${where}: loss.cache: set teacher.cache instead (distill builds the cache there)`);
  if (loss.k !== undefined && Number(loss.k) > teacher.k)
    throw new ConfigError(`${where}: loss.k: ${String(loss.k)} is more than teacher.k ${teacher.k}`);
  const train = resolveConfigPaths(
    validateTrainConfig({ ...rest, loss: { k: teacher.k, ...loss, cache: cachePath } }, where),
    baseDir,
  );
  return { train, teacher, cachePath };
}

/** Read a distill YAML (train config + teacher), apply `--set` overrides, validate and resolve paths. */
export function loadDistillConfig(path: string, overrides: readonly string[] = []): DistillConfig {
  const source = readYamlMapping(path);
  applyOverrides(source.raw, overrides);
  return validateDistillConfig(source.raw, path, dirname(resolve(path)));
}

/** Progress events of `distill`: the cache pass, then the training run's own events. */
export type DistillEvent =
  | { type: 'cache'; status: 'reused' | 'building'; path: string; reason?: string; examples: number }
  | { type: 'cache-progress'; done: number; total: number }
  | { type: 'cache-done'; path: string; tokens: number; seconds: number };

export interface DistillOptions extends TrainAsyncOptions {
  onDistillEvent?: (event: DistillEvent) => void;
}

export interface DistillResult {
  train: TrainResult;
  cache: { path: string; reused: boolean; header: TeacherCacheHeader };
}

/** The fields of a cache header that must match for it to be reused, with their labels. */
const REUSE_FIELDS: [keyof TeacherCacheHeader, string][] = [
  ['teacher_model_hash', 'teacher model'],
  ['adapter_hash', 'teacher adapter'],
  ['data_hash', 'data file'],
  ['data_options', 'data options'],
  ['k', 'k'],
  ['tokenizer_fingerprint', 'tokenizer'],
];

function studentTokenizer(config: TrainConfig): { tokenizer: Tokenizer; vocabSize: number; name: string } {
  if (typeof config.model === 'string') {
    const json = readModelConfig(config.model);
    return {
      tokenizer: Tokenizer.fromDir(config.model),
      vocabSize: Number(json.vocab_size),
      name: config.model,
    };
  }
  const json = readJsonObject(config.model.config, 'a model config');
  return {
    tokenizer: Tokenizer.fromDir(config.model.tokenizer),
    vocabSize: Number(json.vocab_size),
    name: config.model.config,
  };
}

/**
 * Build (or reuse) the teacher cache of `config`'s training data. Everything is validated (teacher,
 * adapter, shared vocabulary, data) before the cache is written; the write is atomic.
 */
export function ensureTeacherCache(
  config: DistillConfig,
  onEvent: (event: DistillEvent) => void = () => {},
): DistillResult['cache'] {
  const { train, teacher, cachePath } = config;
  const student = studentTokenizer(train);
  const dataOptions = { ...dataOptionsOf(train), report: () => {} };
  const examples = loadDataset(train.data.train, student.tokenizer, dataOptions).examples;
  const header: Omit<TeacherCacheHeader, 'version' | 'k' | 'vocab_size' | 'examples' | 'tokens'> = {
    teacher_model: teacher.model,
    teacher_model_hash: directoryHash(teacher.model),
    adapter: teacher.adapter,
    adapter_hash: teacher.adapter ? directoryHash(teacher.adapter) : null,
    data_file: train.data.train,
    data_hash: fileHash(train.data.train),
    data_options: {
      train_on: train.data.train_on,
      max_length: train.data.max_length,
      truncation: train.data.truncation,
      append_eos: train.data.append_eos,
      chat_template: train.data.chat_template,
    },
    tokenizer_fingerprint: tokenizerFingerprint(student.tokenizer),
  };
  let reason = 'no cache yet';
  if (existsSync(cachePath)) {
    try {
      const cached = openTeacherCache(cachePath);
      const full = { ...header, k: teacher.k } as Record<string, unknown>;
      const differs = REUSE_FIELDS.filter(
        ([f]) => JSON.stringify(cached.header[f]) !== JSON.stringify(full[f]),
      ).map(([, label]) => label);
      if (differs.length === 0) {
        cached.verify({
          examples,
          vocabSize: student.vocabSize,
          tokenizer: student.tokenizer,
          trainFile: train.data.train,
        });
        onEvent({ type: 'cache', status: 'reused', path: cachePath, examples: examples.length });
        return { path: cachePath, reused: true, header: cached.header };
      }
      reason = `built from another ${differs.join(', ')}`;
    } catch (error) {
      if (!(error instanceof AttuneError)) throw error;
      reason = `unusable (${error.message})`;
    }
  }
  const loaded = loadModel(teacher.model);
  if (!loaded.tokenizer)
    throw new ConfigError(
      `teacher.model: ${teacher.model} has no tokenizer.json (needed to check the vocabulary)`,
    );
  checkSameVocabulary(
    { name: `teacher ${teacher.model}`, model: loaded.model, tokenizer: loaded.tokenizer },
    { name: `student ${student.name}`, vocabSize: student.vocabSize, tokenizer: student.tokenizer },
  );
  if (teacher.adapter) loadAdapter(loaded.model, teacher.adapter);
  onEvent({ type: 'cache', status: 'building', path: cachePath, reason, examples: examples.length });
  const started = performance.now();
  const built = buildTeacherCache({
    teacher: loaded.model,
    examples,
    k: teacher.k,
    path: cachePath,
    header,
    onProgress: (done, total) => onEvent({ type: 'cache-progress', done, total }),
  });
  onEvent({
    type: 'cache-done',
    path: cachePath,
    tokens: built.tokens,
    seconds: (performance.now() - started) / 1000,
  });
  return { path: cachePath, reused: false, header: built };
}

/** Build or reuse the teacher cache, then train the student with the `first` loss on it. */
export async function distill(config: DistillConfig, options: DistillOptions = {}): Promise<DistillResult> {
  const out = config.train.output_dir;
  if (!options.resume && !options.overwrite && existsSync(out))
    throw new ConfigError(
      `output_dir ${out} already exists: pass --resume to continue it or --overwrite to replace it`,
    );
  const cache = ensureTeacherCache(config, options.onDistillEvent);
  const train = await trainAsync(config.train, options);
  return { train, cache };
}
