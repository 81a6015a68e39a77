/**
 * The Trainer: validated config in, run directory out. Everything that can fail on bad input
 * (config, model, data, method, loss) is checked before the first step. Each optimizer step runs
 * `grad_accum` micro-batches through the fused-head step, clips, updates and logs one line of
 * metrics.jsonl; checkpoints are atomic and a resumed run continues bit for bit (weights, optimizer
 * moments, data position, dropout counters). A non-finite loss or gradient stops the run with the
 * last good checkpoint kept.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { type Batch, DataLoader, type Dataset, loadDataset, padTokenIdOf } from '../data/index.ts';
import { AttuneError, ConfigError, FormatError } from '../errors.ts';
import { type JsonObject, readJsonObject, Tokenizer, writeTextAtomic } from '../io/index.ts';
import { createModel, type LlamaForCausalLM, loadModel, saveModel } from '../models/index.ts';
import { Dropout, type Parameter } from '../nn/index.ts';
import { type Adapter, applyTuner } from '../peft/index.ts';
import { type CheckpointContents, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { lossOf, type TrainConfig } from './config.ts';
import { createLoss, type TokenLoss } from './losses/index.ts';
import { AdamW, clipGradNorm, type Optimizer, SGD } from './optim/index.ts';
import { lrAt } from './schedule.ts';
import { evaluateLoss, forwardBackwardStep, type MicroBatch } from './step.ts';

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

export interface TrainResult {
  outputDir: string;
  /** adapter/ (adapters) or model/ (full fine-tuning). */
  finalDir: string;
  steps: number;
  finalLoss: number;
  evalLoss: number | null;
  model: LlamaForCausalLM;
  adapter: Adapter;
}

/** The run stopped on purpose (haltAfterStep). */
export class TrainingHalted extends AttuneError {}

interface Prepared {
  model: LlamaForCausalLM;
  tokenizer: Tokenizer;
  adapter: Adapter;
  loss: TokenLoss;
  train: Dataset;
  evalSet: Dataset | null;
  loader: DataLoader;
  optimizer: Optimizer;
  params: [string, Parameter][];
  baseModelName: string;
}

function loadBaseModel(config: TrainConfig): { model: LlamaForCausalLM; tokenizer: Tokenizer; name: string } {
  if (typeof config.model === 'string') {
    const loaded = loadModel(config.model, {
      dtype: config.model_dtype,
      residualDropout: config.train.residual_dropout,
    });
    if (!loaded.tokenizer)
      throw new ConfigError(`model: ${config.model} has no tokenizer.json (needed to tokenize the data)`);
    return { model: loaded.model, tokenizer: loaded.tokenizer, name: config.model };
  }
  const configJson = readJsonObject(config.model.config, 'a model config') as JsonObject;
  const model = createModel(configJson, { seed: config.model.init_seed, dtype: config.model_dtype });
  return { model, tokenizer: Tokenizer.fromDir(config.model.tokenizer), name: config.model.config };
}

function tunerConfig(config: TrainConfig): unknown {
  if (config.method === 'lora') {
    const l = config.lora;
    return {
      r: l.r,
      loraAlpha: l.lora_alpha,
      loraDropout: l.lora_dropout,
      targetModules: l.target_modules,
      useRslora: l.use_rslora,
      init: l.init,
      seed: config.train.seed,
    };
  }
  return {};
}

function buildOptimizer(config: TrainConfig, params: [string, Parameter][]): Optimizer {
  const t = config.train;
  // no weight decay on biases and norm weights (as HF's Trainer)
  const decay = params.filter(([n]) => !n.endsWith('.bias') && !n.endsWith('norm.weight')).map(([, p]) => p);
  const noDecay = params.filter(([n]) => n.endsWith('.bias') || n.endsWith('norm.weight')).map(([, p]) => p);
  const groups = [{ params: decay }, ...(noDecay.length > 0 ? [{ params: noDecay, weightDecay: 0 }] : [])];
  if (t.optimizer === 'sgd')
    return new SGD(groups, { lr: t.lr, momentum: t.momentum, weightDecay: t.weight_decay });
  return new AdamW(groups, { lr: t.lr, betas: t.betas, eps: t.adam_eps, weightDecay: t.weight_decay });
}

/** Load and validate everything a run needs, before any step. */
function prepare(config: TrainConfig): Prepared {
  if (config.model_dtype === 'bf16' && config.method === 'full') {
    throw new ConfigError('model_dtype: bf16 stores frozen weights; full fine-tuning needs model_dtype: f32');
  }
  const { name: lossName, options: lossOptions } = lossOf(config);
  const loss = createLoss(lossName, lossOptions);
  const { model, tokenizer, name } = loadBaseModel(config);
  const dataOptions = {
    trainOn: config.data.train_on === 'auto' ? undefined : config.data.train_on,
    maxLength: config.data.max_length,
    truncation: config.data.truncation,
    onBadRecord: config.data.on_bad_record,
    appendEos: config.data.append_eos,
  };
  const train = loadDataset(config.data.train, tokenizer, dataOptions);
  if (train.examples.length === 0)
    throw new ConfigError(`data.train: ${config.data.train} has no usable examples`);
  const evalSet = config.data.eval ? loadDataset(config.data.eval, tokenizer, dataOptions) : null;
  const adapter = applyTuner(model, config.method, tunerConfig(config));
  const params = adapter.namedTrainableParameters();
  if (params.length === 0) throw new ConfigError(`method '${config.method}' left no trainable parameter`);
  model.train();
  const loader = new DataLoader(train.examples, {
    batchSize: config.train.batch_size,
    seed: config.train.seed,
    packing: config.data.packing,
    maxLength: config.data.max_length,
    padTokenId: padTokenIdOf(tokenizer),
  });
  return {
    model,
    tokenizer,
    adapter,
    loss,
    train,
    evalSet,
    loader,
    optimizer: buildOptimizer(config, params),
    params,
    baseModelName: name,
  };
}

function dropoutModules(model: LlamaForCausalLM): Dropout[] {
  return model.modules().filter((m): m is Dropout => m instanceof Dropout);
}

function trainerState(p: Prepared, lastLoss: number): Record<string, unknown> {
  return {
    loader: p.loader.state(),
    dropoutOffsets: dropoutModules(p.model).map((d) => d.offset),
    lastLoss,
  };
}

function restore(p: Prepared, ckpt: CheckpointContents): void {
  const byName = new Map(p.params);
  for (const [name, t] of ckpt.weights) {
    const param = byName.get(name);
    if (!param)
      throw new ConfigError(`checkpoint holds '${name}', which this run does not train (config changed?)`);
    if (param.size !== t.size)
      throw new ConfigError(`checkpoint tensor '${name}' has ${t.size} values, expected ${param.size}`);
    (param.data as Float32Array).set(t.data as Float32Array);
  }
  if (ckpt.weights.size !== byName.size)
    throw new ConfigError('checkpoint does not hold every trainable parameter (config changed?)');
  p.optimizer.loadStateDict(ckpt.optimizer);
  const st = ckpt.trainerState as { loader: unknown; dropoutOffsets: number[] };
  p.loader.restore(st.loader as ReturnType<DataLoader['state']>);
  const drops = dropoutModules(p.model);
  st.dropoutOffsets.forEach((o, i) => {
    if (drops[i]) drops[i]!.offset = o;
  });
}

function toMicroBatch(b: Batch): MicroBatch {
  return { inputIds: b.inputIds, labels: b.labels };
}

/** Throws unless a new run may write config.output_dir (it does not exist, or --overwrite). */
function checkOutputDir(config: TrainConfig, options: TrainOptions): void {
  if (existsSync(config.output_dir) && !options.resume && !options.overwrite) {
    throw new ConfigError(
      `output_dir ${config.output_dir} already exists: pass --resume to continue it or --overwrite to replace it`,
    );
  }
}

function prepareOutputDir(config: TrainConfig, options: TrainOptions): void {
  const dir = config.output_dir;
  checkOutputDir(config, options);
  if (existsSync(dir) && !options.resume) rmSync(dir, { recursive: true, force: true });
  if (options.resume && !existsSync(dir)) throw new ConfigError(`--resume: ${dir} does not exist`);
  mkdirSync(dir, { recursive: true });
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

/** Save the final artefact: adapter/ for adapters, model/ for full fine-tuning. */
function saveFinal(p: Prepared, config: TrainConfig): string {
  if (config.method === 'full') {
    const dir = join(config.output_dir, 'model');
    saveModel(p.model, dir, { tokenizer: p.tokenizer });
    return dir;
  }
  const dir = join(config.output_dir, 'adapter');
  p.adapter.save(dir, { baseModelNameOrPath: p.baseModelName });
  return dir;
}

/** Run (or resume) the training described by `config`. */
export function train(config: TrainConfig, options: TrainOptions = {}): TrainResult {
  const emit = options.onEvent ?? (() => {});
  if (!options.resume) checkOutputDir(config, options);
  else if (!existsSync(config.output_dir))
    throw new ConfigError(`--resume: ${config.output_dir} does not exist`);
  const p = prepare(config);
  // Only once the model, data and config have been validated: a refused run leaves nothing.
  if (!options.resume) prepareOutputDir(config, options);
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
      // A state that does not fit or a corrupt file (a TypeError on a field of the wrong type):
      // say which checkpoint, on one line.
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
  const schedule = {
    schedule: t.schedule,
    warmupSteps: t.warmup_steps,
    totalSteps: t.steps,
    baseLr: t.lr,
    minLrRatio: t.min_lr_ratio,
  } as const;
  let lastLoss = Number.NaN;
  let lastEval: number | null = null;
  const checkpoint = (step: number) => {
    const weights = new Map(
      p.params.map(([n, q]) => [n, q as unknown as import('../tensor/index.ts').Tensor]),
    );
    const dir = saveCheckpoint(
      config.output_dir,
      { step, weights, optimizer: p.optimizer.stateDict(), trainerState: trainerState(p, lastLoss) },
      t.keep_last,
    );
    emit({ type: 'checkpoint', step, dir });
  };
  for (let step = startStep + 1; step <= t.steps; step++) {
    const started = performance.now();
    const lr = lrAt(step - 1, schedule);
    p.optimizer.setLr(lr);
    const batches: MicroBatch[] = [];
    for (let i = 0; i < t.grad_accum; i++) batches.push(toMicroBatch(p.loader.next()));
    const stats = forwardBackwardStep(p.model, p.loss, batches);
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
    for (const [k, v] of Object.entries(stats.parts))
      if (k !== 'nll' || lossOf(config).name !== 'ce') metrics[k] = v;
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
  }
  const finalDir = saveFinal(p, config);
  emit({ type: 'done', outputDir: config.output_dir, finalDir });
  return {
    outputDir: config.output_dir,
    finalDir,
    steps: t.steps,
    finalLoss: lastLoss,
    evalLoss: lastEval,
    model: p.model,
    adapter: p.adapter,
  };
}
