/**
 * World bases: small Llama models pretrained once on the benchmark world's corpus and shipped in
 * the repository (`world-bases/<size>/`), so the demo and the method bench start from a model
 * that knows its world instead of pretraining one at run time.
 *
 * A base folder is a normal model folder (config.json, model.safetensors, the world tokenizer)
 * plus `base.json`: the recipe it was built from, the sha256 of every file, the known-fact
 * accuracy it reached, its loss curve and the exact losses of its first steps on each backend
 * (the reproducibility check). The world itself is not stored: it is regenerated from the
 * recipe's world options, which is deterministic.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo, setBackend } from '../backend/index.ts';
import { loadNative } from '../backend/native/load.ts';
import { ConfigError, FormatError } from '../errors.ts';
import { type JsonObject, writeJsonAtomic } from '../io/index.ts';
import { llamaConfigJson, loadModel } from '../models/index.ts';
import { validateTrainConfig } from '../train/config.ts';
import { type TrainEvent, TrainingHalted, train } from '../train/trainer.ts';
import { predict, readEvalRecords } from '../uq/index.ts';
import { generateWorld, type World, type WorldOptions } from './generate.ts';
import { WORLD_SPECIAL_TOKENS, worldVocabulary, writeWorldTokenizer } from './tokenizer.ts';
import { WORLD_FILES, writeWorld } from './write.ts';

/** The shipped base sizes. */
export const WORLD_BASE_SIZES = ['small', 'large'] as const;
/** A shipped base size. */
export type WorldBaseSize = (typeof WORLD_BASE_SIZES)[number];

/** Everything a world base is built from. */
export interface WorldBaseRecipe {
  version: number;
  size: WorldBaseSize;
  world: WorldOptions;
  model: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
  };
  pretrain: {
    steps: number;
    batchSize: number;
    lr: number;
    maxLength: number;
    warmupSteps: number;
    minLrRatio: number;
    weightDecay: number;
    seed: number;
  };
}

/** The world every shipped base knows: 44 people per split (308 questions each), 308 out-of-domain ones. */
export const WORLD_BASE_WORLD: WorldOptions = {
  seed: 0,
  knownPeople: 44,
  taughtPeople: 44,
  unknownPeople: 44,
  cities: 20,
  countries: 6,
  biographiesPerPerson: 4,
  finetuneBiographies: 2,
  oodQuestions: 308,
};

/** The recipe of each shipped base (changing one means rebuilding and committing its folder). */
export const WORLD_BASE_RECIPES: Readonly<Record<WorldBaseSize, WorldBaseRecipe>> = {
  small: {
    version: 1,
    size: 'small',
    world: WORLD_BASE_WORLD,
    model: { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKvHeads: 2 },
    pretrain: {
      steps: 1200,
      batchSize: 24,
      lr: 3e-3,
      maxLength: 192,
      warmupSteps: 30,
      minLrRatio: 0.1,
      weightDecay: 0.01,
      seed: 0,
    },
  },
  large: {
    version: 1,
    size: 'large',
    world: WORLD_BASE_WORLD,
    model: { hiddenSize: 256, intermediateSize: 768, numLayers: 4, numHeads: 8, numKvHeads: 4 },
    pretrain: {
      steps: 800,
      batchSize: 24,
      lr: 2e-3,
      maxLength: 192,
      warmupSteps: 30,
      minLrRatio: 0.1,
      weightDecay: 0.01,
      seed: 0,
    },
  },
};

/** Files of a base folder covered by its integrity hashes (base.json itself is not). */
export const WORLD_BASE_FILES = [
  'config.json',
  'generation_config.json',
  'model.safetensors',
  'tokenizer.json',
  'tokenizer_config.json',
] as const;

/** The exact losses of a recipe's first steps on one backend. */
export interface FirstSteps {
  backend: 'js' | 'native';
  /** The native addon's SIMD level (its f32 kernels' path); 'js' for the js backend. */
  kernels: string;
  losses: number[];
}

/** The kernel path first steps are tied to: the js backend is portable, the native one per SIMD level. */
export function kernelPath(backend: 'js' | 'native'): string {
  return backend === 'js' ? 'js' : (loadNative().cpu?.simd ?? 'unknown');
}

/** base.json: what a base was built from and what it reached. */
export interface WorldBaseManifest {
  format: 'attune-world-base';
  version: 1;
  recipe: WorldBaseRecipe;
  vocab_size: number;
  parameters: number;
  /** Greedy exact-match accuracy on every known-fact question of the world. */
  known_accuracy: number;
  known_questions: number;
  /** sha256 (hex) of each file of WORLD_BASE_FILES. */
  sha256: Record<string, string>;
  first_steps: FirstSteps[];
  /** [step, loss] of steps 1..10, then every 10th step (and the last). */
  loss_curve: [number, number][];
  built: { backend: string; threads: number; seconds: number };
}

/** Steps of the reproducibility check per backend (the js backend is slow, so it checks fewer). */
export const FIRST_STEPS = { native: 3, js: 1 } as const;

/** The repository's (or installed package's) folder of the shipped base of `size`. */
export function shippedWorldBaseDir(size: WorldBaseSize): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'world-bases', size);
}

/** The world a recipe's base knows (regenerated: deterministic). */
export function worldOfRecipe(recipe: Pick<WorldBaseRecipe, 'world'>): World {
  return generateWorld(recipe.world);
}

/** sha256 hex of a file. */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The texts the world tokenizer's vocabulary is collected from: every written world file. */
function worldTexts(worldDir: string): string[] {
  return WORLD_FILES.filter((f) => f !== 'world.json').map((f) => readFileSync(join(worldDir, f), 'utf8'));
}

/** Write the model config of `recipe` for the world tokenizer in `tokenizerDir`'s world. */
function writeModelConfig(recipe: WorldBaseRecipe, world: World, texts: string[], path: string): number {
  const vocab = worldVocabulary(world, texts);
  const vocabSize = Object.keys(vocab).length;
  writeJsonAtomic(path, {
    ...llamaConfigJson({
      vocabSize,
      ...recipe.model,
      bosTokenId: vocab[WORLD_SPECIAL_TOKENS.bos]!,
      eosTokenId: vocab[WORLD_SPECIAL_TOKENS.eos]!,
      maxPositionEmbeddings: recipe.pretrain.maxLength,
      tieWordEmbeddings: true,
    }),
    pad_token_id: vocab[WORLD_SPECIAL_TOKENS.pad]!,
  });
  return vocabSize;
}

/** Hooks for progress while building (and, for buildWorldBase, whether to replace its output). */
export interface BuildHooks {
  /** Replace an existing output folder once the new base is complete (default false: refused). */
  overwrite?: boolean;
  onPhase?: (phase: string, total: number) => void;
  onProgress?: (done: number, fields?: Record<string, number | string>) => void;
  onNote?: (text: string) => void;
}

/**
 * Pretrain `recipe` in `work` (world files, tokenizer, config, the run) for `steps` steps (default
 * the recipe's). Returns the run folder; the trained model is in `run/model`.
 */
export function pretrainRecipe(
  recipe: WorldBaseRecipe,
  work: string,
  hooks: BuildHooks = {},
  steps = recipe.pretrain.steps,
): { runDir: string; vocabSize: number } {
  const world = worldOfRecipe(recipe);
  const worldDir = join(work, 'world');
  writeWorld(world, worldDir);
  const texts = worldTexts(worldDir);
  const tokenizerDir = join(work, 'tokenizer');
  writeWorldTokenizer(world, texts, tokenizerDir);
  const configPath = join(work, 'config.json');
  const vocabSize = writeModelConfig(recipe, world, texts, configPath);
  const p = recipe.pretrain;
  const runDir = join(work, 'run');
  const config = validateTrainConfig(
    {
      model: { config: configPath, tokenizer: tokenizerDir, init_seed: p.seed },
      data: {
        train: join(worldDir, 'pretrain.jsonl'),
        train_on: 'all',
        max_length: p.maxLength,
        packing: true,
      },
      method: 'full',
      optimizer: { name: 'adamw', weight_decay: p.weightDecay },
      schedule: { name: 'cosine', warmup_steps: p.warmupSteps, min_lr_ratio: p.minLrRatio },
      train: { steps: p.steps, batch_size: p.batchSize, lr: p.lr, seed: p.seed, log_every: 1 },
      output_dir: runDir,
    },
    `world base recipe (${recipe.size})`,
  );
  hooks.onPhase?.(`pretrain ${recipe.size} world base`, steps);
  // Only the first steps (the reproducibility check): the schedule is still the recipe's whole length.
  const halt = steps < p.steps ? { haltAfterStep: steps } : {};
  try {
    train(config, { overwrite: true, onEvent: progressOf(hooks), ...halt });
  } catch (error) {
    if (!(error instanceof TrainingHalted)) throw error;
  }
  return { runDir, vocabSize };
}

function progressOf(hooks: BuildHooks): (e: TrainEvent) => void {
  return (e) => {
    if (e.type === 'step') hooks.onProgress?.(e.metrics.step, { loss: e.metrics.loss });
  };
}

/** [step, loss] of each logged step of a run. */
export function runLosses(runDir: string): [number, number][] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { step: number; loss: number })
    .map((m) => [m.step, m.loss]);
}

/** The losses of the first `steps` steps of `recipe` on the active backend (a fresh run in `work`). */
export function firstStepLosses(recipe: WorldBaseRecipe, work: string, steps: number): number[] {
  const { runDir } = pretrainRecipe(recipe, work, {}, steps);
  return runLosses(runDir).map(([, loss]) => loss);
}

/** Greedy exact-match accuracy of the model in `modelDir` on every known-fact question of its world. */
export function knownAccuracy(
  modelDir: string,
  worldDir: string,
  onProgress?: (done: number) => void,
): {
  accuracy: number;
  questions: number;
} {
  const loaded = loadModel(modelDir);
  const records = readEvalRecords(join(worldDir, 'eval_known.jsonl'));
  const preds = predict(loaded.model, loaded.tokenizer!, records, {
    maxNewTokens: 24,
    eosTokenIds: loaded.eosTokenIds,
    onProgress,
  });
  return { accuracy: preds.filter((p) => p.correct).length / preds.length, questions: preds.length };
}

/**
 * Build the base of `recipe` into `out` (refused when it exists, unless `hooks.overwrite`): pretrain, evaluate the known facts,
 * record the first steps on both backends (when the addon is there), hash the files, write
 * base.json; all in a temporary folder renamed into place at the end.
 */
export function buildWorldBase(
  recipe: WorldBaseRecipe,
  out: string,
  hooks: BuildHooks = {},
): WorldBaseManifest {
  if (existsSync(out))
    throw new ConfigError(`${out} already exists (choose another --out, or remove it first)`);
  const work = `${out}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const started = Date.now();
  const { runDir, vocabSize } = pretrainRecipe(recipe, join(work, 'build'), hooks);
  const seconds = (Date.now() - started) / 1000;
  const modelDir = join(runDir, 'model');
  const folder = join(work, 'base');
  mkdirSync(folder);
  for (const f of WORLD_BASE_FILES) cpSync(join(modelDir, f), join(folder, f));
  const losses = runLosses(runDir);
  hooks.onPhase?.('evaluate known facts', recipe.world.knownPeople * 7);
  const known = knownAccuracy(folder, join(work, 'build', 'world'), (d) => hooks.onProgress?.(d));
  const info = backendInfo();
  const first: FirstSteps[] = [
    {
      backend: info.active,
      kernels: kernelPath(info.active),
      losses: losses.slice(0, FIRST_STEPS[info.active]).map(([, l]) => l),
    },
  ];
  const other = info.active === 'native' ? 'js' : 'native';
  if (other === 'js' || info.nativeLoaded) {
    hooks.onNote?.(`recording the first ${FIRST_STEPS[other]} step(s) on the ${other} backend`);
    setBackend(other);
    try {
      first.push({
        backend: other,
        kernels: kernelPath(other),
        losses: firstStepLosses(recipe, join(work, 'first'), FIRST_STEPS[other]),
      });
    } finally {
      setBackend(info.active);
    }
  }
  const loaded = loadModel(folder);
  const manifest: WorldBaseManifest = {
    format: 'attune-world-base',
    version: 1,
    recipe,
    vocab_size: vocabSize,
    parameters: loaded.model.numParameters(),
    known_accuracy: known.accuracy,
    known_questions: known.questions,
    sha256: Object.fromEntries(WORLD_BASE_FILES.map((f) => [f, sha256File(join(folder, f))])),
    first_steps: first,
    loss_curve: losses.filter(([s], i) => s <= 10 || s % 10 === 0 || i === losses.length - 1),
    built: { backend: info.active, threads: info.threads, seconds: Math.round(seconds) },
  };
  writeJsonAtomic(join(folder, 'base.json'), manifest as unknown as JsonObject);
  mkdirSync(dirname(out), { recursive: true });
  rmSync(out, { recursive: true, force: true });
  renameSync(folder, out);
  rmSync(work, { recursive: true, force: true });
  return manifest;
}

/** Read and check base.json of the base in `dir`: every hashed file present with its recorded sha256. */
export function openWorldBase(dir: string): { dir: string; manifest: WorldBaseManifest; world: World } {
  const path = join(dir, 'base.json');
  if (!existsSync(path))
    throw new ConfigError(
      `${dir} is not a world base (no base.json; build one with 'attune world pretrain')`,
    );
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as WorldBaseManifest;
  if (manifest.format !== 'attune-world-base')
    throw new FormatError(
      path,
      `expected format 'attune-world-base', found ${JSON.stringify(manifest.format)}`,
    );
  for (const f of WORLD_BASE_FILES) {
    const file = join(dir, f);
    if (!existsSync(file)) throw new FormatError(file, 'missing (the base folder is incomplete)');
    const actual = sha256File(file);
    if (actual !== manifest.sha256[f])
      throw new FormatError(
        file,
        `sha256 ${actual.slice(0, 12)}... does not match base.json's ${String(manifest.sha256[f]).slice(0, 12)}... (the file changed since the base was built)`,
      );
  }
  return { dir, manifest, world: worldOfRecipe(manifest.recipe) };
}

/** The base named by `sizeOrDir`: a shipped size (`small`, `large`) or a folder built by `attune world pretrain`. */
export function resolveWorldBase(sizeOrDir: string): {
  dir: string;
  manifest: WorldBaseManifest;
  world: World;
} {
  const dir = (WORLD_BASE_SIZES as readonly string[]).includes(sizeOrDir)
    ? shippedWorldBaseDir(sizeOrDir as WorldBaseSize)
    : sizeOrDir;
  return openWorldBase(dir);
}
