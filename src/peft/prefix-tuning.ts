/**
 * Prefix tuning ("Prefix-Tuning: Optimizing Continuous Prompts for Generation"), the tuner
 * 'prefix_tuning' as PEFT's PrefixTuningConfig (peft_type "PREFIX_TUNING"): n trained key/value
 * prefixes of every attention layer. PEFT's PrefixEncoder: without `prefix_projection` the
 * parameter is an embedding [n, num_layers * 2 * token_dim] (N(0, 1)); with it, an embedding
 * [n, token_dim] through Linear(token_dim, encoder_hidden_size), tanh, Linear(encoder_hidden_size,
 * num_layers * 2 * token_dim) (torch's default Linear init). token_dim = kv_heads * head_dim and
 * num_attention_heads = kv_heads (PEFT's grouped-query rule). Row i of the output viewed as
 * [num_layers * 2, kv_heads, head_dim]: entry 2l is layer l's key, 2l + 1 its value (PEFT's
 * get_prompt). PEFT saves the output (the projected prefix) as `prompt_embeddings`
 * [n, num_layers * 2 * token_dim]; a saved adapter loads as that plain embedding (PEFT's
 * inference mode), whatever its prefix_projection says. tanh is computed as
 * softmax([2a, 0])_0 - softmax([2a, 0])_1 (differentiable on both backends).
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import type { JsonObject } from '../io/index.ts';
import type { CausalLM, PrefixKeyValues } from '../models/index.ts';
import { Linear, type Module, Parameter } from '../nn/index.ts';
import {
  add,
  concat,
  Rng,
  reshape,
  slice,
  softmax,
  stack,
  sub,
  type Tensor,
  zeros,
} from '../tensor/index.ts';
import {
  causalLMOf,
  checkModelFields,
  type PromptEncoder,
  PromptLearningAdapter,
  positiveInt,
} from './prompt-learning.ts';
import { registerTuner, type Tuner } from './tuner.ts';

/** Prefix tuning's config. */
export interface PrefixTuningConfig {
  /** Virtual tokens n (default 8). */
  numVirtualTokens?: number;
  /** Reparameterise through the MLP (default false). */
  prefixProjection?: boolean;
  /** Width of the MLP's hidden layer (default token_dim). */
  encoderHiddenSize?: number | null;
  /** Seed of the initialisation (default 0). */
  seed?: number;
  /** Loaded adapter: build the plain embedding of the saved prefix (recorded projection kept). */
  fromSaved?: boolean;
  /** Checks of a loaded config's shape fields against the model. */
  checkModel?: (lm: CausalLM) => void;
}

/** tanh(a) = sigmoid(2a) - sigmoid(-2a), via a softmax over [2a, 0] (see the file comment). */
export function tanhOf(a: Tensor): Tensor {
  const pair = softmax(stack([add(a, a), zeros(a.shape, { dtype: a.dtype as 'f32' | 'f64' })], -1), -1);
  const last = a.rank;
  return reshape(sub(slice(pair, last, 0, 1), slice(pair, last, 1, 2)), a.shape);
}

/** PEFT's PrefixEncoder for one model (see the file comment). */
export class PrefixEncoder implements PromptEncoder {
  private readonly layers: number;
  private readonly kvHeads: number;
  private readonly headDim: number;

  /** `embedding` [n, width]; `transform` the MLP (null without projection). */
  constructor(
    model: CausalLM,
    readonly embedding: Parameter,
    readonly transform: [Linear, Linear] | null,
  ) {
    this.layers = model.config.numLayers;
    this.kvHeads = model.config.numKvHeads;
    this.headDim = model.config.headDim;
  }

  get length(): number {
    return this.embedding.shape[0]!;
  }
  inputEmbeddings(): null {
    return null;
  }
  /** The encoder's output [n, num_layers * 2 * token_dim]. */
  output(): Tensor {
    if (!this.transform) return this.embedding;
    const [l1, l2] = this.transform;
    return l2.forward(tanhOf(l1.forward(this.embedding)));
  }
  keyValues(): PrefixKeyValues[] {
    const n = this.length;
    const view = reshape(this.output(), [n, this.layers * 2, this.kvHeads, this.headDim]);
    const shape = [n, this.kvHeads, this.headDim];
    return Array.from({ length: this.layers }, (_, l) => ({
      k: reshape(slice(view, 1, 2 * l, 2 * l + 1), shape),
      v: reshape(slice(view, 1, 2 * l + 1, 2 * l + 2), shape),
    }));
  }
  namedParameters(): [string, Parameter][] {
    const out: [string, Parameter][] = [['prompt_encoder.embedding.weight', this.embedding]];
    if (this.transform) {
      const [l1, l2] = this.transform;
      out.push(
        ['prompt_encoder.transform.0.weight', l1.weight],
        ['prompt_encoder.transform.0.bias', l1.bias!],
      );
      out.push(
        ['prompt_encoder.transform.2.weight', l2.weight],
        ['prompt_encoder.transform.2.bias', l2.bias!],
      );
    }
    return out;
  }
  savedEmbeddings(): Tensor {
    return this.output();
  }
  savedShape(): number[] {
    return [this.length, this.layers * 2 * this.kvHeads * this.headDim];
  }
  loadEmbeddings(t: Tensor): void {
    if (this.transform)
      throw new ConfigError(
        'prefix_tuning: cannot load a saved prefix into the projection MLP (PEFT saves its output); load it as a saved adapter',
      );
    this.embedding.copyFrom(t, true);
  }
}

/** Prefix tuning's options in training configs (PEFT's PrefixTuningConfig names). */
export const prefixTuningOptions = z.object({
  num_virtual_tokens: z
    .number()
    .int()
    .positive()
    .default(8)
    .describe('virtual tokens n: key/value prefixes per layer'),
  prefix_projection: z
    .boolean()
    .default(false)
    .describe('reparameterise the prefix through an MLP (embedding -> Linear -> tanh -> Linear)'),
  encoder_hidden_size: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe("width of the projection MLP's hidden layer; null = token_dim (kv_heads * head_dim)"),
});

const PEFT_TYPE = 'PREFIX_TUNING';

/** The 'prefix_tuning' tuner. */
export const prefixTuningTuner: Tuner<PrefixTuningConfig> = {
  name: 'prefix_tuning',
  description: "prefix tuning: n trained keys/values before every layer's attention (PEFT PREFIX_TUNING)",
  peftType: PEFT_TYPE,
  freezesBaseMatrices: true,
  options: prefixTuningOptions,
  fromOptions(options, context): PrefixTuningConfig {
    const o = prefixTuningOptions.parse(options);
    return {
      numVirtualTokens: o.num_virtual_tokens,
      prefixProjection: o.prefix_projection,
      encoderHiddenSize: o.encoder_hidden_size,
      seed: context.seed,
    };
  },
  apply(model: Module, config: PrefixTuningConfig): PromptLearningAdapter {
    const lm = causalLMOf(model, 'prefix_tuning');
    config.checkModel?.(lm);
    const n = config.numVirtualTokens ?? 8;
    if (!Number.isInteger(n) || n <= 0)
      throw new ConfigError(`prefix_tuning: num_virtual_tokens must be a positive integer, found ${n}`);
    const c = lm.config;
    const tokenDim = c.numKvHeads * c.headDim;
    const hidden = config.encoderHiddenSize ?? tokenDim;
    if (!Number.isInteger(hidden) || hidden <= 0)
      throw new ConfigError(`prefix_tuning: encoder_hidden_size must be a positive integer, found ${hidden}`);
    const project = (config.prefixProjection ?? false) && !config.fromSaved;
    const dtype = lm.activationDtype();
    const rng = new Rng(config.seed ?? 0);
    const outDim = c.numLayers * 2 * tokenDim;
    const embedding = Parameter.normal([n, project ? tokenDim : outDim], 0, 1, rng, dtype);
    const transform: [Linear, Linear] | null = project
      ? [new Linear(tokenDim, hidden, { dtype, rng }), new Linear(hidden, outDim, { dtype, rng })]
      : null;
    const fields: JsonObject = {
      encoder_hidden_size: hidden,
      num_attention_heads: c.numKvHeads,
      num_layers: c.numLayers,
      num_virtual_tokens: n,
      prefix_projection: config.prefixProjection ?? false,
      token_dim: tokenDim,
    };
    return new PromptLearningAdapter(
      'prefix_tuning',
      PEFT_TYPE,
      lm,
      new PrefixEncoder(lm, embedding, transform),
      fields,
    );
  },
  configFromAdapterJson(json, file): PrefixTuningConfig {
    const n = positiveInt(json, 'num_virtual_tokens', file);
    const subs = json.num_transformer_submodules ?? 1;
    if (subs !== 1)
      throw new FormatError(
        file,
        `'num_transformer_submodules' must be 1 for a causal LM, found ${JSON.stringify(subs)}`,
      );
    const projection = json.prefix_projection ?? false;
    if (typeof projection !== 'boolean')
      throw new FormatError(
        file,
        `'prefix_projection' must be true or false, found ${JSON.stringify(projection)}`,
      );
    const enc = json.encoder_hidden_size ?? null;
    return {
      numVirtualTokens: n,
      prefixProjection: projection,
      encoderHiddenSize: enc === null ? null : positiveInt(json, 'encoder_hidden_size', file),
      fromSaved: true,
      checkModel: (lm) =>
        checkModelFields(json, file, {
          token_dim: lm.config.numKvHeads * lm.config.headDim,
          num_layers: lm.config.numLayers,
          num_attention_heads: lm.config.numKvHeads,
        }),
    };
  },
};

registerTuner('prefix_tuning', prefixTuningTuner);
