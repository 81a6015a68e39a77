/**
 * Prompt tuning ("The Power of Scale for Parameter-Efficient Prompt Tuning"), the tuner
 * 'prompt_tuning' as PEFT's PromptTuningConfig (peft_type "PROMPT_TUNING"): n trained input
 * embeddings `prompt_embeddings` [n, hidden] put before every sequence; the model is frozen.
 * Init as PEFT's PromptEmbedding: RANDOM draws N(0, 1) (torch.nn.Embedding's default); TEXT takes
 * the token embeddings of `prompt_tuning_init_text` (tokenized with the special tokens, as PEFT
 * calls the tokenizer), repeated to n tokens and truncated.
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import type { JsonObject } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { type Module, Parameter } from '../nn/index.ts';
import { Rng, type Tensor } from '../tensor/index.ts';
import {
  causalLMOf,
  checkModelFields,
  type PromptEncoder,
  PromptLearningAdapter,
  positiveInt,
} from './prompt-learning.ts';
import { registerTuner, type Tuner } from './tuner.ts';

/** Prompt tuning's config. */
export interface PromptTuningConfig {
  /** Virtual tokens n (default 8). */
  numVirtualTokens?: number;
  /** 'RANDOM' (N(0, 1)) or 'TEXT' (the embeddings of `initText`); default RANDOM. */
  init?: 'RANDOM' | 'TEXT';
  /** Text whose token embeddings start the prompt (init TEXT). */
  initText?: string | null;
  /** Token ids of a text (the run's tokenizer, special tokens included); needed for init TEXT. */
  tokenize?: (text: string) => number[];
  /** Seed of the RANDOM init (default 0). */
  seed?: number;
  /** Recorded as tokenizer_name_or_path (PEFT's field; null when unknown). */
  tokenizerNameOrPath?: string | null;
  /** A loaded adapter's recorded init (written back on save; the saved values replace the init). */
  recordedInit?: { init: string; text: string | null };
  /** Checks of a loaded config's shape fields against the model (set by configFromAdapterJson). */
  checkModel?: (lm: CausalLM) => void;
}

/** PEFT's text init: `ids` repeated to `n` tokens, then truncated to n. */
export function textInitIds(ids: readonly number[], n: number): number[] {
  if (ids.length === 0) throw new ConfigError('prompt_tuning: prompt_tuning_init_text has no tokens');
  const reps = Math.ceil(n / ids.length);
  return Array.from({ length: reps }, () => ids)
    .flat()
    .slice(0, n);
}

/** The trained prompt: one [n, hidden] parameter, the model's input-embedding prefix. */
export class PromptEmbedding implements PromptEncoder {
  /** Wrap `weight` [n, hidden]. */
  constructor(readonly weight: Parameter) {}

  get length(): number {
    return this.weight.shape[0]!;
  }
  inputEmbeddings(): Tensor {
    return this.weight;
  }
  keyValues(): null {
    return null;
  }
  namedParameters(): [string, Parameter][] {
    return [['prompt_encoder.embedding.weight', this.weight]];
  }
  savedEmbeddings(): Tensor {
    return this.weight;
  }
  savedShape(): number[] {
    return [...this.weight.shape];
  }
  loadEmbeddings(t: Tensor): void {
    this.weight.copyFrom(t, true);
  }
}

/** The initial prompt [n, hidden] for `model` and `config` (checked). */
export function initialPrompt(model: CausalLM, config: PromptTuningConfig): Parameter {
  const n = config.numVirtualTokens ?? 8;
  const hidden = model.config.hiddenSize;
  const dtype = model.activationDtype();
  if ((config.init ?? 'RANDOM') === 'RANDOM') {
    const rng = new Rng(config.seed ?? 0);
    return Parameter.normal([n, hidden], 0, 1, rng, dtype);
  }
  const text = config.initText;
  if (typeof text !== 'string' || text.length === 0)
    throw new ConfigError(
      "prompt_tuning: prompt_tuning_init 'TEXT' needs prompt_tuning_init_text (a non-empty string)",
    );
  if (!config.tokenize)
    throw new ConfigError("prompt_tuning: prompt_tuning_init 'TEXT' needs the run's tokenizer");
  const ids = textInitIds(config.tokenize(text), n);
  const table = embeddingTable(model);
  const p = Parameter.zeros([n, hidden], dtype);
  const src = table.data;
  const vocab = table.shape[0]!;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= vocab)
      throw new ConfigError(`prompt_tuning: init token id ${id} is outside the vocabulary (${vocab})`);
    for (let j = 0; j < hidden; j++) (p.data as Float32Array)[i * hidden + j] = Number(src[id * hidden + j]);
  }
  return p;
}

/** The model's input token-embedding matrix [vocab, hidden] (f32 / f64 values). */
function embeddingTable(model: CausalLM): Tensor {
  const named = model.namedParameters();
  const hit = named.find(([name]) => /(embed_tokens|wte)\.weight$/.test(name));
  if (!hit) throw new ConfigError('prompt_tuning: the model has no token embedding (embed_tokens / wte)');
  if (hit[1].dtype !== 'f32' && hit[1].dtype !== 'f64')
    throw new ConfigError(`prompt_tuning: init TEXT reads the token embeddings, found dtype ${hit[1].dtype}`);
  return hit[1];
}

/** Prompt tuning's options in training configs (PEFT's PromptTuningConfig names). */
export const promptTuningOptions = z.object({
  num_virtual_tokens: z
    .number()
    .int()
    .positive()
    .default(8)
    .describe('virtual tokens n before every sequence'),
  prompt_tuning_init: z
    .enum(['random', 'text', 'RANDOM', 'TEXT'])
    .default('RANDOM')
    .describe(
      "'random' (N(0, 1), torch's Embedding init) or 'text' (the embeddings of prompt_tuning_init_text)",
    ),
  prompt_tuning_init_text: z
    .string()
    .min(1)
    .nullable()
    .default(null)
    .describe("text whose token embeddings start the prompt (repeated / truncated to n; init 'text')"),
});

const PEFT_TYPE = 'PROMPT_TUNING';

/** The 'prompt_tuning' tuner. */
export const promptTuningTuner: Tuner<PromptTuningConfig> = {
  name: 'prompt_tuning',
  description: 'prompt tuning: n trained input embeddings before every sequence (PEFT PROMPT_TUNING)',
  peftType: PEFT_TYPE,
  freezesBaseMatrices: true,
  options: promptTuningOptions,
  fromOptions(options, context): PromptTuningConfig {
    const o = promptTuningOptions.parse(options);
    const init = o.prompt_tuning_init.toUpperCase() as 'RANDOM' | 'TEXT';
    if (init === 'TEXT' && !o.prompt_tuning_init_text)
      throw new ConfigError("method.prompt_tuning_init_text: needed with prompt_tuning_init 'text'");
    return {
      numVirtualTokens: o.num_virtual_tokens,
      init,
      initText: o.prompt_tuning_init_text,
      seed: context.seed,
      ...(context.tokenize ? { tokenize: context.tokenize } : {}),
    };
  },
  apply(model: Module, config: PromptTuningConfig): PromptLearningAdapter {
    const lm = causalLMOf(model, 'prompt_tuning');
    const n = config.numVirtualTokens ?? 8;
    if (!Number.isInteger(n) || n <= 0)
      throw new ConfigError(`prompt_tuning: num_virtual_tokens must be a positive integer, found ${n}`);
    config.checkModel?.(lm);
    const weight = initialPrompt(lm, config);
    const c = lm.config;
    const init = config.recordedInit?.init ?? config.init ?? 'RANDOM';
    const text = config.recordedInit ? config.recordedInit.text : (config.initText ?? null);
    const fields: JsonObject = {
      num_attention_heads: c.numHeads,
      num_layers: c.numLayers,
      num_virtual_tokens: n,
      prompt_tuning_init: init,
      prompt_tuning_init_text: init === 'TEXT' ? text : null,
      token_dim: c.hiddenSize,
      tokenizer_kwargs: null,
      tokenizer_name_or_path: config.tokenizerNameOrPath ?? null,
    };
    return new PromptLearningAdapter('prompt_tuning', PEFT_TYPE, lm, new PromptEmbedding(weight), fields);
  },
  configFromAdapterJson(json, file): PromptTuningConfig {
    const n = positiveInt(json, 'num_virtual_tokens', file);
    const subs = json.num_transformer_submodules ?? 1;
    if (subs !== 1)
      throw new FormatError(
        file,
        `'num_transformer_submodules' must be 1 for a causal LM, found ${JSON.stringify(subs)}`,
      );
    const init = json.prompt_tuning_init ?? 'RANDOM';
    if (typeof init !== 'string' || !['RANDOM', 'TEXT', 'SAMPLE_VOCAB'].includes(init))
      throw new FormatError(
        file,
        `'prompt_tuning_init' must be "RANDOM", "TEXT" or "SAMPLE_VOCAB", found ${JSON.stringify(init)}`,
      );
    const text = json.prompt_tuning_init_text ?? null;
    const tok = json.tokenizer_name_or_path ?? null;
    return {
      numVirtualTokens: n,
      // the saved values replace the init: draw nothing from a text or a tokenizer
      init: 'RANDOM',
      tokenizerNameOrPath: typeof tok === 'string' ? tok : null,
      recordedInit: { init, text: typeof text === 'string' ? text : null },
      checkModel: (lm) =>
        checkModelFields(json, file, { token_dim: lm.config.hiddenSize, num_layers: lm.config.numLayers }),
    };
  },
};

registerTuner('prompt_tuning', promptTuningTuner);
