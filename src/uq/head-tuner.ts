/**
 * The `uq_head` tuner: an uncertainty head (evidential, DEUP, BayesCap; heads.ts) trained by
 * `attune train` instead of `attune uq fit-head`. The base model stays frozen (and an optional
 * PEFT adapter is merged into it first); during `apply` the model answers every data.train question
 * greedily, each answer is graded against the record's completion, and the mean final hidden state
 * of prompt + answer is its feature vector. The trainable parameters are the head's weight and bias;
 * the tuner has no token loss (`tokenLoss: false`), so each step trains on the head objective
 * (`auxiliaryLoss`: heads.ts's full-batch loss with its L2 penalty) alone, with the run's optimizer,
 * schedule, clipping, checkpoints and exact resume. `output_dir/adapter` is a head folder (head.json
 * + head.safetensors) that `eval --head` reads, recording the model, adapter and data it was fitted on.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import { type CausalLM, isCausalLM } from '../models/index.ts';
import { Parameter } from '../nn/index.ts';
import { type Adapter, loadAdapter, registerTuner, type Tuner } from '../peft/index.ts';
import { add, fromArray, mul, scalar, sum, type Tensor } from '../tensor/index.ts';
import { adapterIdentity, fileSha256, modelIdentity } from './calibrate/fitted-on.ts';
import { GRADE_METRICS } from './grade.ts';
import { type HeadFile, loadHeadFile, saveHeadFile } from './head-file.ts';
import { headExamplesOfQuestions, questionsOfExamples } from './head-fit.ts';
import {
  HEAD_KINDS,
  type Head,
  type HeadExample,
  type HeadKind,
  headObjective,
  headOutputs,
  standardised,
} from './heads.ts';

/** The uq_head tuner's options (`method: {name: uq_head, kind, ...}`). */
export const uqHeadOptions = z.object({
  kind: z
    .enum(HEAD_KINDS)
    .describe('the head: evidential (vacuity), deup (error minus aleatoric), bayescap (sigma)'),
  adapter: z
    .string()
    .nullable()
    .default(null)
    .describe('a PEFT adapter merged into the frozen model first (the head scores model + adapter)')
    .meta({ path: true }),
  metric: z
    .string()
    .default('exact')
    .refine((m) => GRADE_METRICS.includes(m), { message: `expected one of ${GRADE_METRICS.join(', ')}` })
    .describe('grading of the greedy answers against the completions'),
  max_new_tokens: z.number().int().positive().default(32).describe('answer length limit'),
  stop: z.array(z.string()).default([]).describe('generation stops once an answer contains one of these'),
  l2: z.number().min(0).default(1e-3).describe('L2 penalty on the head weights (not biases)'),
  anneal: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('evidential: steps over which the KL weight grows to 1 (null = half of train.steps)'),
  identity_weight: z.number().min(0).default(1).describe('bayescap: weight of the identity term'),
});

/** The uq_head tuner's config. */
export interface UqHeadConfig {
  kind: HeadKind;
  adapter: string | null;
  metric: string;
  maxNewTokens: number;
  stop: string[];
  l2: number;
  anneal: number;
  identityWeight: number;
  steps: number;
  tokenizer: () => Tokenizer;
  /** The training questions, tokenized (data.train). */
  questions: () => { inputIds: Int32Array; labels: Int32Array }[];
  modelPath: string | null;
  trainFile: string | null;
}

/** The head trained by `attune train`, as an Adapter over the frozen model. */
class UqHeadAdapter implements Adapter {
  readonly method = 'uq_head';
  readonly merged = false;
  readonly weight: Parameter;
  readonly bias: Parameter;
  private step = 1;
  private readonly xs: Float64Array[];
  private readonly featureMean: Float64Array;
  private readonly featureStd: Float64Array;

  constructor(
    readonly model: CausalLM,
    private readonly config: UqHeadConfig,
    private readonly examples: readonly HeadExample[],
    private readonly fittedOn: HeadFile['fittedOn'],
    private readonly graded: { correct: number; empty: number },
  ) {
    const d = examples[0]!.features.length;
    const outs = headOutputs(config.kind);
    // zero init, as uq fit-head: every head starts at the same, neutral point
    this.weight = Parameter.zeros([outs, d], 'f32', { requiresGrad: true });
    this.bias = Parameter.zeros([outs], 'f32', { requiresGrad: true });
    ({ featureMean: this.featureMean, featureStd: this.featureStd, xs: this.xs } = standardised(examples, d));
  }

  trainableParameters(): Parameter[] {
    return [this.weight, this.bias];
  }

  namedTrainableParameters(): [string, Parameter][] {
    return [
      ['uq_head.weight', this.weight],
      ['uq_head.bias', this.bias],
    ];
  }

  state(): Map<string, Tensor> {
    return new Map<string, Tensor>([
      ['weight', this.weight],
      ['bias', this.bias],
    ]);
  }

  beginStep(step: number): void {
    this.step = step;
  }

  /** The head objective at step t (the evidential KL weight min(1, (t - 1) / anneal)). */
  private objective(t: number) {
    return headObjective(
      this.config.kind,
      Float64Array.from(this.weight.data as Float32Array),
      Float64Array.from(this.bias.data as Float32Array),
      this.xs,
      this.examples,
      {
        lambda: Math.min(1, (t - 1) / this.config.anneal),
        identityWeight: this.config.identityWeight,
        l2: this.config.l2,
      },
    );
  }

  /**
   * The head objective as a differentiable scalar: its gradient is computed analytically in f64
   * (heads.ts) and carried by the surrogate sum(W * dW) + sum(b * db) + constant, whose value is
   * the objective and whose gradient is exactly (dW, db).
   */
  auxiliaryLoss() {
    const r = this.objective(this.step);
    const gW = fromArray(Float32Array.from(r.gWeight), this.weight.shape);
    const gB = fromArray(Float32Array.from(r.gBias), this.bias.shape);
    let linear = 0;
    for (let k = 0; k < r.gWeight.length; k++)
      linear += r.gWeight[k]! * (this.weight.data as Float32Array)[k]!;
    for (let k = 0; k < r.gBias.length; k++) linear += r.gBias[k]! * (this.bias.data as Float32Array)[k]!;
    const value = add(add(sum(mul(this.weight, gW)), sum(mul(this.bias, gB))), scalar(r.loss - linear));
    return { value, parts: { head_loss: r.loss } };
  }

  /** The head as heads.ts holds it (f64 copies), with the objective after the last update as `loss`. */
  head(): Head {
    return {
      kind: this.config.kind,
      dim: this.featureMean.length,
      featureMean: this.featureMean,
      featureStd: this.featureStd,
      weight: Float64Array.from(this.weight.data as Float32Array),
      bias: Float64Array.from(this.bias.data as Float32Array),
      options: {
        steps: this.config.steps,
        lr: Number.NaN,
        l2: this.config.l2,
        anneal: this.config.anneal,
        identityWeight: this.config.identityWeight,
      },
      loss: this.objective(this.config.steps + 1).loss,
    };
  }

  merge(): void {}
  unmerge(): void {}

  save(dir: string): void {
    saveHeadFile(
      dir,
      { type: 'uq-head', version: 1, head: this.head(), fittedOn: this.fittedOn },
      { overwrite: true },
    );
  }

  load(dir: string): void {
    const { head } = loadHeadFile(dir);
    if (head.kind !== this.config.kind || head.dim !== this.featureMean.length)
      throw new ConfigError(
        `${dir}: a ${head.kind} head on ${head.dim} features, this run trains a ${this.config.kind} head on ${this.featureMean.length}`,
      );
    (this.weight.data as Float32Array).set(head.weight);
    (this.bias.data as Float32Array).set(head.bias);
  }

  unload(): CausalLM {
    return this.model;
  }

  mergeAndUnload(): CausalLM {
    return this.model;
  }

  metrics(): Record<string, number> {
    // what the head is fitted on, in every logged step (the graded answers never change)
    return {
      head_examples: this.examples.length,
      head_correct: this.graded.correct,
      head_empty: this.graded.empty,
    };
  }
}

/** The 'uq_head' tuner. */
export const uqHeadTuner: Tuner<UqHeadConfig> = {
  name: 'uq_head',
  description:
    'an uncertainty head (evidential, deup, bayescap) on a frozen model, fitted on its graded answers',
  peftType: null,
  freezesBaseMatrices: true,
  tokenLoss: false,
  options: uqHeadOptions,
  fromOptions(options, context): UqHeadConfig {
    const o = uqHeadOptions.parse(options);
    const steps = context.steps ?? 300;
    return {
      kind: o.kind,
      adapter: o.adapter,
      metric: o.metric,
      maxNewTokens: o.max_new_tokens,
      stop: o.stop,
      l2: o.l2,
      anneal: o.anneal ?? Math.max(1, Math.floor(steps / 2)),
      identityWeight: o.identity_weight,
      steps,
      tokenizer: () => {
        if (!context.tokenizer)
          throw new ConfigError("uq_head: needs the run's tokenizer (train it with attune train)");
        return context.tokenizer;
      },
      questions: () => {
        if (!context.calibrationData)
          throw new ConfigError("uq_head: needs the run's training data (data.train)");
        return context.calibrationData(null);
      },
      modelPath: context.modelPath ?? null,
      trainFile: context.trainFile ?? null,
    };
  },
  apply(model, config): UqHeadAdapter {
    if (!isCausalLM(model)) throw new ConfigError('uq_head: needs a causal language model from models/');
    // validate before touching the model: the adapter folder and the questions
    const adapterId = config.adapter === null ? null : adapterIdentity(config.adapter);
    const tokenizer = config.tokenizer();
    let questions: ReturnType<typeof questionsOfExamples>;
    try {
      questions = questionsOfExamples(config.questions(), tokenizer);
    } catch (error) {
      if (error instanceof RangeError) throw new ConfigError(`uq_head: data.train ${error.message}`);
      throw error;
    }
    if (config.adapter !== null) loadAdapter(model, config.adapter).mergeAndUnload();
    model.freeze();
    const { examples, empty, correct } = headExamplesOfQuestions(model, tokenizer, questions, {
      metric: config.metric,
      maxNewTokens: config.maxNewTokens,
      stop: config.stop,
    });
    if (examples.length < 2)
      throw new ConfigError(
        `uq_head: need at least 2 non-empty answers to fit on, found ${examples.length} (${empty} empty of ${questions.length})`,
      );
    const fittedOn: HeadFile['fittedOn'] = {
      method: config.kind,
      score: 'hidden_mean',
      model: config.modelPath === null ? null : modelIdentity(config.modelPath),
      adapter: adapterId,
      data: {
        path: config.trainFile ?? '',
        sha256: config.trainFile === null ? '' : fileSha256(config.trainFile),
      },
      n: examples.length,
    };
    return new UqHeadAdapter(model, config, examples, fittedOn, { correct, empty });
  },
};

registerTuner('uq_head', uqHeadTuner);
