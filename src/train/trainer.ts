/**
 * The Trainer: validated config in, run directory out. Everything that can fail on bad input
 * (config, model, data, method, loss, optimizer, schedule) is checked before the run directory is
 * created, so a fixed rerun is never refused because a failed one left an empty folder. The method,
 * loss, optimizer and schedule come from their registries; the trainer knows none by name. Each optimizer step runs
 * `grad_accum` micro-batches through the fused-head step, clips, updates and logs one line of
 * metrics.jsonl; checkpoints are atomic and a resumed run continues bit for bit (weights, optimizer
 * moments, data position, dropout counters). A non-finite loss or gradient stops the run with the
 * last good checkpoint kept.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTick } from 'node:timers/promises';
import { stringify as toYaml } from 'yaml';
import {
  type Batch,
  type BatchTransform,
  createBatchTransforms,
  DataLoader,
  type Dataset,
  loadDataset,
  padTokenIdOf,
  type TokenizedExample,
  type TransformableBatch,
} from '../data/index.ts';
import { AttuneError, ConfigError, FormatError } from '../errors.ts';
import { type JsonObject, readJsonObject, Tokenizer, writeTextAtomic } from '../io/index.ts';
import { type CausalLM, createModel, loadModel, saveModel } from '../models/index.ts';
import { LayerNorm, mixSeed, type Parameter, RMSNorm } from '../nn/index.ts';
import { type Adapter, type CalibrationExample, type Tuner, tuners } from '../peft/index.ts';
import { fromArray } from '../tensor/index.ts';
import { type CheckpointContents, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { lossOf, optionsOf, type TrainConfig } from './config.ts';
import { initFromAdapter } from './init-adapter.ts';
import { createLoss, type TokenLoss } from './losses/index.ts';
import { clipGradNorm, createOptimizer, type Optimizer, type ParamGroup } from './optim/index.ts';
import { applyTrainPrecision, type BaseStorage, baseStorageDtype } from './precision.ts';
import { scheduleFactor } from './schedules/index.ts';
import {
  addAuxiliaryLoss,
  evaluateLoss,
  forwardBackwardStep,
  type MicroBatch,
  type StepStats,
} from './step.ts';

/** One line of metrics.jsonl. */
export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  /** Supervised tokens in the step. */
  tokens: number;
  eval_loss?: number;
  [part: string]: number | undefined;
}

/** Progress events for a UI (the CLI draws a bar from them). */
export type TrainEvent =
  | {
      type: 'start';
      totalSteps: number;
      startStep: number;
      trainable: number;
      examples: number;
      skipped: number;
    }
  | { type: 'step'; metrics: StepMetrics }
  | { type: 'eval'; step: number; evalLoss: number }
  | { type: 'checkpoint'; step: number; dir: string }
  | { type: 'done'; outputDir: string; finalDir: string };

export interface TrainOptions {
  /** Continue the run in config.output_dir from its latest checkpoint. */
  resume?: boolean;
  /** Delete an existing output_dir first. */
  overwrite?: boolean;
  onEvent?: (event: TrainEvent) => void;
  /** Stop (as if killed) right after this step has been checkpointed; for tests. */
  haltAfterStep?: number;
}

export interface TrainAsyncOptions extends TrainOptions {
  /**
   * When aborted (e.g. on SIGINT), the run finishes the step in progress, saves a checkpoint and
   * rejects with TrainingInterrupted, which says how to resume.
   */
  signal?: AbortSignal;
}

export interface TrainResult {
  outputDir: string;
  /** model/ for tuners whose artefact is a whole model (full fine-tuning), else adapter/. */
  finalDir: string;
  /** adapter/: the tuner's files, written by every tuner (`attune export --merge` folds them in). */
  adapterDir: string;
  steps: number;
  finalLoss: number;
  evalLoss: number | null;
  model: CausalLM;
  adapter: Adapter;
}

/** The run stopped on purpose (haltAfterStep). */
export class TrainingHalted extends AttuneError {}

/** The run was interrupted (signal) after a checkpoint was saved; the message says how to resume. */
export class TrainingInterrupted extends AttuneError {
  constructor(
    readonly step: number,
    readonly checkpointDir: string,
    readonly outputDir: string,
  ) {
    super(
      `interrupted after step ${step}: checkpoint saved in ${checkpointDir}; continue with 'attune train CONFIG --resume' (output_dir ${outputDir})`,
    );
  }
}

/** Thrown into the step loop to ask for a checkpoint and a stop. */
class InterruptRequest extends Error {}

interface Prepared {
  model: CausalLM;
  tokenizer: Tokenizer;
  tuner: Tuner;
  adapter: Adapter;
  loss: TokenLoss;
  train: Dataset;
  evalSet: Dataset | null;
  loader: DataLoader;
  /** data.transforms, applied to each training micro-batch before its forward pass. */
  transforms: BatchTransform[];
  padTokenId: number;
  optimizer: Optimizer;
  params: [string, Parameter][];
  baseModelName: string;
}

function loadBaseModel(
  config: TrainConfig,
  dtype: BaseStorage,
): { model: CausalLM; tokenizer: Tokenizer; name: string } {
  if (typeof config.model === 'string') {
    const loaded = loadModel(config.model, {
      dtype,
      residualDropout: config.train.residual_dropout,
    });
    if (!loaded.tokenizer)
      throw new ConfigError(`model: ${config.model} has no tokenizer.json (needed to tokenize the data)`);
    return { model: loaded.model, tokenizer: loaded.tokenizer, name: config.model };
  }
  const configJson = readJsonObject(config.model.config, 'a model config') as JsonObject;
  const model = createModel(configJson, { seed: config.model.init_seed, dtype });
  return { model, tokenizer: Tokenizer.fromDir(config.model.tokenizer), name: config.model.config };
}

/** Names of the parameters of norm layers (RMSNorm, LayerNorm), whatever the architecture calls them. */
function normParameterNames(model: CausalLM): Set<string> {
  const names = new Set<string>();
  for (const [path, m] of model.namedModules())
    if (m instanceof RMSNorm || m instanceof LayerNorm)
      for (const [n] of m.namedParameters()) names.add(path ? `${path}.${n}` : n);
  return names;
}

/**
 * The optimizer's parameter groups: no weight decay on biases and norm weights (as HF's Trainer: by
 * layer type, so GPT-2's ln_* too); a parameter the adapter sets a weight decay for
 * (`weightDecayOverrides`, e.g. LoRA's lora_b_weight_decay) gets that one, grouped by value.
 */
export function optimizerGroups(
  params: readonly [string, Parameter][],
  noDecayNames: ReadonlySet<string>,
  overrides: ReadonlyMap<Parameter, number> = new Map(),
): ParamGroup[] {
  const isNoDecay = (n: string) => n.endsWith('.bias') || noDecayNames.has(n);
  const free = params.filter(([, p]) => !overrides.has(p));
  const decay = free.filter(([n]) => !isNoDecay(n)).map(([, p]) => p);
  const noDecay = free.filter(([n]) => isNoDecay(n)).map(([, p]) => p);
  const byValue = new Map<number, Parameter[]>();
  for (const [, p] of params) {
    const wd = overrides.get(p);
    if (wd === undefined) continue;
    byValue.set(wd, [...(byValue.get(wd) ?? []), p]);
  }
  return [
    { params: decay },
    ...(noDecay.length > 0 ? [{ params: noDecay, weightDecay: 0 }] : []),
    ...[...byValue].map(([weightDecay, ps]) => ({ params: ps, weightDecay })),
  ];
}

function buildOptimizer(
  config: TrainConfig,
  model: CausalLM,
  params: [string, Parameter][],
  adapter: Adapter,
): Optimizer {
  const groups = optimizerGroups(params, normParameterNames(model), adapter.weightDecayOverrides?.());
  return createOptimizer(config.optimizer, groups, config.train.lr);
}

function readChatTemplate(config: TrainConfig): string | undefined {
  const t = config.data.chat_template;
  if (t === null) return undefined;
  if (!t.endsWith('.jinja')) return t;
  try {
    return readFileSync(t, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `data.chat_template: cannot read ${t} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** The tokenization options of a config's data section (what the trainer's loadDataset gets). */
export function dataOptionsOf(config: TrainConfig) {
  return {
    trainOn: config.data.train_on === 'auto' ? undefined : config.data.train_on,
    maxLength: config.data.max_length,
    truncation: config.data.truncation,
    onBadRecord: config.data.on_bad_record,
    appendEos: config.data.append_eos,
    chatTemplate: readChatTemplate(config),
  };
}

/** Load and validate everything a run needs, before any step. */
function prepare(config: TrainConfig, resume = false): Prepared {
  const { name: lossName, options: lossOptions } = lossOf(config);
  const loss = createLoss(lossName, lossOptions);
  // a loss may bring its own data shape, grouping and per-example state (LossData)
  const groupSize = loss.data?.groupSize ?? 1;
  if (config.train.batch_size % groupSize !== 0 || (groupSize > 1 && config.data.packing))
    throw new ConfigError(
      `loss '${lossName}' trains on groups of ${groupSize} examples (${loss.data!.shape}): train.batch_size (${config.train.batch_size}) must be a multiple of ${groupSize} and data.packing off`,
    );
  const transforms = createBatchTransforms(config.data.transforms);
  const weighting = transforms.find((t) => t.setsWeights);
  if (weighting && !loss.acceptsWeights)
    throw new ConfigError(
      `data.transforms: '${weighting.name}' sets per-token loss weights, but loss '${lossName}' does not apply them (use a loss that does, e.g. ce)`,
    );
  const tuner = tuners.get(config.method.name);
  // data-driven inits (CorDA) read calibration examples during apply, once the data is loaded
  let calibration: ((path: string | null) => CalibrationExample[]) | null = null;
  const tunerConfig = tuner.fromOptions(optionsOf(config.method), {
    seed: config.train.seed,
    steps: config.train.steps,
    calibrationData: (path) => calibration!(path),
    tokenize: (text) => tokenizer.encode(text),
    get tokenizer() {
      return tokenizer;
    },
    ...(typeof config.model === 'string' ? { modelPath: config.model } : {}),
    trainFile: config.data.train,
  });
  scheduleFactor(config.schedule, 0, config.train.steps);
  const { model, tokenizer, name } = loadBaseModel(
    config,
    baseStorageDtype(config.precision, config.model_dtype, tuner),
  );
  const dataOptions = dataOptionsOf(config);
  const load = loss.data ? loss.data.load : loadDataset;
  const train = load(config.data.train, tokenizer, dataOptions);
  if (train.examples.length === 0)
    throw new ConfigError(`data.train: ${config.data.train} has no usable examples`);
  const weighted = train.examples.find((e) => e.tokenWeights);
  if (weighted && !loss.acceptsWeights)
    throw new ConfigError(
      `data.train: ${weighted.file}:${weighted.line} sets loss weights (weight / token_weights / a message weight), but loss '${lossName}' does not apply them (use a loss that does, e.g. ce)`,
    );
  const evalSet = config.data.eval ? load(config.data.eval, tokenizer, dataOptions) : null;
  // a loss with data of its own (a teacher cache) checks it against this data before any output
  loss.bindData?.({
    trainFile: config.data.train,
    examples: train.examples,
    vocabSize: model.config.vocabSize,
    tokenizer,
  });
  // before the tuner is applied: the model is exactly the base (e.g. DPO's reference log-probs)
  loss.data?.prepare({
    model,
    examples: train.examples,
    outputDir: config.output_dir,
    resume,
    batchSize: config.train.batch_size,
    padTokenId: padTokenIdOf(tokenizer),
    report: (line) => process.stderr.write(`${line}\n`),
  });
  const baseParameters = new Set(model.parameters());
  calibration = (path) => (path === null ? train : loadDataset(path, tokenizer, dataOptions)).examples;
  const adapter = tuner.apply(model, tunerConfig);
  // a resumed run reads its own checkpoint instead
  if (config.init_adapter !== null && !resume) initFromAdapter(adapter, config.init_adapter);
  const params = adapter.namedTrainableParameters();
  if (params.length === 0)
    throw new ConfigError(`method '${config.method.name}' left no trainable parameter`);
  // once the tuner has said what trains: bf16-mixed stores the frozen base in bf16, GEMMs in bf16
  applyTrainPrecision(model, config.precision, baseParameters);
  model.activationCheckpointing = config.train.activation_checkpointing;
  model.train();
  const loader = new DataLoader(train.examples, {
    batchSize: config.train.batch_size,
    seed: config.train.seed,
    packing: config.data.packing,
    maxLength: config.data.max_length,
    padTokenId: padTokenIdOf(tokenizer),
    ...(groupSize > 1 ? { groupSize } : {}),
  });
  return {
    model,
    tokenizer,
    tuner,
    adapter,
    loss,
    train,
    evalSet,
    loader,
    transforms,
    padTokenId: padTokenIdOf(tokenizer),
    optimizer: buildOptimizer(config, model, params, adapter),
    params,
    baseModelName: name,
  };
}

function trainerState(p: Prepared, lastLoss: number): Record<string, unknown> {
  return {
    loader: p.loader.state(),
    lastLoss,
  };
}

/** Checkpoint names of the tuner's extra resume state (`Adapter.trainingState`). */
const ADAPTER_STATE_PREFIX = 'adapter_state/';

function restore(p: Prepared, ckpt: CheckpointContents): void {
  const byName = new Map(p.params);
  const adapterState = new Map<string, import('../tensor/index.ts').Tensor>();
  for (const [name, t] of ckpt.weights) {
    if (name.startsWith(ADAPTER_STATE_PREFIX)) {
      adapterState.set(name.slice(ADAPTER_STATE_PREFIX.length), t);
      continue;
    }
    const param = byName.get(name);
    if (!param)
      throw new ConfigError(`checkpoint holds '${name}', which this run does not train (config changed?)`);
    if (param.size !== t.size)
      throw new ConfigError(`checkpoint tensor '${name}' has ${t.size} values, expected ${param.size}`);
    (param.data as Float32Array).set(t.data as Float32Array);
  }
  if (ckpt.weights.size - adapterState.size !== byName.size)
    throw new ConfigError('checkpoint does not hold every trainable parameter (config changed?)');
  if (p.adapter.loadTrainingState) p.adapter.loadTrainingState(adapterState);
  else if (adapterState.size > 0)
    throw new ConfigError(`checkpoint holds method state, which method '${p.adapter.method}' does not take`);
  p.optimizer.loadStateDict(ckpt.optimizer);
  const st = ckpt.trainerState as { loader: unknown };
  p.loader.restore(st.loader as ReturnType<DataLoader['state']>);
}

/** `batch` after the config's data.transforms (input ids rewritten in place, weights added). */
function transformed(p: Prepared, batch: MicroBatch, seed: number, step: number): MicroBatch {
  if (!batch.exampleOf || !batch.positionOf) return batch;
  const dataWeights = recordWeights(p.train.examples, batch.exampleOf, batch.positionOf);
  if (p.transforms.length === 0) return dataWeights ? { ...batch, weights: dataWeights } : batch;
  const view: TransformableBatch = {
    inputIds: Int32Array.from(batch.inputIds.data as Int32Array),
    labels: batch.labels.data as Int32Array,
    exampleOf: batch.exampleOf,
    positionOf: batch.positionOf,
    ...(dataWeights ? { weights: dataWeights } : {}),
  };
  for (const t of p.transforms) t.apply(view, { seed, step, padTokenId: p.padTokenId });
  const inputIds = fromArray(view.inputIds, batch.inputIds.shape, { dtype: 'i32' });
  batch.inputIds.dispose();
  return { ...batch, inputIds, ...(view.weights ? { weights: view.weights } : {}) };
}

/** Per position of a batch: the loss weight its example's record sets there; null when no example of the batch sets any. */
function recordWeights(
  examples: readonly TokenizedExample[],
  exampleOf: Int32Array,
  positionOf: Int32Array,
): Float32Array | null {
  let weights: Float32Array | null = null;
  for (let i = 0; i < exampleOf.length; i++) {
    const e = exampleOf[i]!;
    const w = e < 0 ? undefined : examples[e]!.tokenWeights;
    if (!w) continue;
    weights ??= new Float32Array(exampleOf.length).fill(1);
    weights[i] = w[positionOf[i]!]!;
  }
  return weights;
}

function toMicroBatch(b: Batch): MicroBatch {
  return { inputIds: b.inputIds, labels: b.labels, exampleOf: b.exampleOf, positionOf: b.positionOf };
}

/** Create (or, with --overwrite, replace) the run directory; called once everything is validated. */
function prepareOutputDir(config: TrainConfig, options: TrainOptions): void {
  if (options.overwrite) rmSync(config.output_dir, { recursive: true, force: true });
  mkdirSync(config.output_dir, { recursive: true });
}

/** Keep metrics.jsonl lines up to `step` (a resumed run rewrites what follows). */
function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .filter((l) => (JSON.parse(l) as { step: number }).step <= step);
  writeTextAtomic(path, kept.length > 0 ? `${kept.join('\n')}\n` : '');
}

function evalBatches(p: Prepared, config: TrainConfig): Iterable<MicroBatch> {
  const loader = new DataLoader(p.evalSet!.examples, {
    batchSize: config.train.batch_size,
    seed: 0,
    shuffle: false,
    packing: false,
    maxLength: config.data.max_length,
    padTokenId: padTokenIdOf(p.tokenizer),
  });
  const limit = config.train.eval_batches > 0 ? config.train.eval_batches : loader.batchesPerEpoch();
  return {
    *[Symbol.iterator]() {
      for (let i = 0; i < limit; i++) yield toMicroBatch(loader.next());
    },
  };
}

function runEval(p: Prepared, config: TrainConfig): number {
  const wasTraining = p.model.training;
  p.model.eval();
  try {
    return evaluateLoss(p.model, evalBatches(p, config)).loss;
  } finally {
    p.model.train(wasTraining);
  }
}

/**
 * Save the final artefacts: adapter/ (every tuner, through the tuner's own save), and model/ for
 * tuners whose natural artefact is a whole model. Returns [finalDir, adapterDir].
 */
function saveFinal(p: Prepared, config: TrainConfig): [string, string] {
  const adapterDir = join(config.output_dir, 'adapter');
  p.adapter.save(adapterDir, { baseModelNameOrPath: p.baseModelName });
  if (!p.tuner.writesMergedModel) return [adapterDir, adapterDir];
  const modelDir = join(config.output_dir, 'model');
  saveModel(p.model, modelDir, { tokenizer: p.tokenizer });
  return [modelDir, adapterDir];
}

/** Run (or resume) the training described by `config`. */
export function train(config: TrainConfig, options: TrainOptions = {}): TrainResult {
  const steps = runSteps(config, options);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * `train`, yielding to the event loop between steps so signal handlers and timers run. When
 * `options.signal` aborts, the step in progress finishes, a checkpoint is saved and the promise
 * rejects with TrainingInterrupted (the CLI wires SIGINT/SIGTERM to it).
 */
export async function trainAsync(config: TrainConfig, options: TrainAsyncOptions = {}): Promise<TrainResult> {
  const steps = runSteps(config, options);
  for (;;) {
    const r = options.signal?.aborted ? steps.throw(new InterruptRequest()) : steps.next();
    if (r.done) return r.value;
    await nextTick();
  }
}

/** The step stats of a step without a token loss: no token fed to the model. */
function noTokenLoss(): StepStats {
  return { loss: 0, parts: {}, tokens: 0, inputTokens: 0 };
}

/** The run as a generator that yields after each optimizer step (see train / trainAsync). */
function* runSteps(config: TrainConfig, options: TrainOptions): Generator<number, TrainResult> {
  const emit = options.onEvent ?? (() => {});
  if (options.resume && !existsSync(config.output_dir))
    throw new ConfigError(`--resume: ${config.output_dir} does not exist`);
  if (!options.resume && existsSync(config.output_dir) && !options.overwrite) {
    throw new ConfigError(
      `output_dir ${config.output_dir} already exists: pass --resume to continue it or --overwrite to replace it`,
    );
  }
  const p = prepare(config, options.resume ?? false);
  if (!options.resume) prepareOutputDir(config, options);
  p.loss.data?.save(config.output_dir);
  const metricsPath = join(config.output_dir, 'metrics.jsonl');
  let startStep = 0;
  if (options.resume) {
    const dir = latestCheckpoint(config.output_dir);
    if (!dir) throw new ConfigError(`--resume: ${config.output_dir} has no checkpoint to resume from`);
    let ckpt: ReturnType<typeof loadCheckpoint>;
    try {
      ckpt = loadCheckpoint(dir);
      restore(p, ckpt);
    } catch (error) {
      // a state that does not fit or a corrupt file (a TypeError on a field of the wrong type):
      // say which checkpoint, on one line
      if (error instanceof FormatError) throw error;
      if (!(error instanceof AttuneError || error instanceof TypeError || error instanceof RangeError))
        throw error;
      const what = error instanceof AttuneError ? '' : 'it is malformed: ';
      throw new FormatError(dir, `cannot resume from it: ${what}${error.message.replace(/\s*\n\s*/g, ' ')}`);
    }
    startStep = ckpt.step;
    truncateMetrics(metricsPath, startStep);
  } else {
    writeFileSync(join(config.output_dir, 'config.resolved.yaml'), toYaml(config));
    writeFileSync(metricsPath, '');
  }
  const t = config.train;
  emit({
    type: 'start',
    totalSteps: t.steps,
    startStep,
    trainable: p.params.reduce((s, [, q]) => s + q.size, 0),
    examples: p.train.examples.length,
    skipped: p.train.stats.skipped,
  });
  let lastLoss = Number.NaN;
  let lastEval: number | null = null;
  const checkpoint = (step: number) => {
    const weights = new Map(
      p.params.map(([n, q]) => [n, q as unknown as import('../tensor/index.ts').Tensor]),
    );
    for (const [n, q] of p.adapter.trainingState?.() ?? []) weights.set(`${ADAPTER_STATE_PREFIX}${n}`, q);
    const dir = saveCheckpoint(
      config.output_dir,
      { step, weights, optimizer: p.optimizer.stateDict(), trainerState: trainerState(p, lastLoss) },
      t.keep_last,
    );
    emit({ type: 'checkpoint', step, dir });
  };
  for (let step = startStep + 1; step <= t.steps; step++) {
    const started = performance.now();
    const lr = t.lr * scheduleFactor(config.schedule, step - 1, t.steps);
    // dropout masks are keyed by (seed, step): a resumed run draws the same ones, nothing to restore
    p.model.setDropoutKey(mixSeed(t.seed >>> 0, step));
    p.optimizer.setLr(lr);
    p.adapter.beginStep?.(step, t.steps);
    const batches: MicroBatch[] = [];
    for (let i = 0; i < t.grad_accum; i++)
      batches.push(transformed(p, toMicroBatch(p.loader.next()), t.seed, step));
    // a method with an objective of its own (tokenLoss false) trains on its auxiliary loss alone
    const stats = p.tuner.tokenLoss === false ? noTokenLoss() : forwardBackwardStep(p.model, p.loss, batches);
    addAuxiliaryLoss(p.adapter, stats);
    p.adapter.afterBackward?.(step, t.steps);
    for (const b of batches) {
      b.inputIds.dispose();
      b.labels.dispose();
    }
    const gradNorm = clipGradNorm(
      p.params.map(([, q]) => q),
      t.max_grad_norm > 0 ? t.max_grad_norm : Number.POSITIVE_INFINITY,
    );
    if (!Number.isFinite(stats.loss) || !Number.isFinite(gradNorm)) {
      p.optimizer.zeroGrad();
      const kept = latestCheckpoint(config.output_dir);
      throw new AttuneError(
        `step ${step}: the loss or gradient is not finite (loss ${stats.loss}, grad norm ${gradNorm}); stopped without updating.${kept ? ` Last good checkpoint: ${kept}` : ''} Try a lower train.lr.`,
      );
    }
    p.optimizer.step();
    p.optimizer.zeroGrad();
    p.adapter.afterStep?.(step, t.steps, p.optimizer);
    lastLoss = stats.loss;
    const seconds = (performance.now() - started) / 1000;
    const metrics: StepMetrics = {
      step,
      loss: stats.loss,
      lr,
      grad_norm: gradNorm,
      tokens_per_s: stats.inputTokens / seconds,
      tokens: stats.tokens,
    };
    // a loss with several parts logs each (ce has one, its value is `loss`)
    if (Object.keys(stats.parts).length > 1) for (const [k, v] of Object.entries(stats.parts)) metrics[k] = v;
    Object.assign(metrics, p.adapter.metrics?.() ?? {});
    const evalNow =
      p.evalSet !== null && ((t.eval_every > 0 && step % t.eval_every === 0) || step === t.steps);
    if (evalNow) {
      lastEval = runEval(p, config);
      metrics.eval_loss = lastEval;
      emit({ type: 'eval', step, evalLoss: lastEval });
    }
    if (step % t.log_every === 0 || evalNow || step === t.steps)
      appendFileSync(metricsPath, `${JSON.stringify(metrics)}\n`);
    emit({ type: 'step', metrics });
    if ((t.save_every > 0 && step % t.save_every === 0) || options.haltAfterStep === step) checkpoint(step);
    if (options.haltAfterStep === step) throw new TrainingHalted(`halted after step ${step} (haltAfterStep)`);
    if (step < t.steps) {
      try {
        yield step;
      } catch (error) {
        if (!(error instanceof InterruptRequest)) throw error;
        checkpoint(step);
        throw new TrainingInterrupted(step, latestCheckpoint(config.output_dir)!, config.output_dir);
      }
    }
  }
  const [finalDir, adapterDir] = saveFinal(p, config);
  emit({ type: 'done', outputDir: config.output_dir, finalDir });
  return {
    outputDir: config.output_dir,
    finalDir,
    adapterDir,
    steps: t.steps,
    finalLoss: lastLoss,
    evalLoss: lastEval,
    model: p.model,
    adapter: p.adapter,
  };
}
