/**
 * Hub checkpoints -> llama.cpp's GGUF layout, as its converter (convert_hf_to_gguf.py) does it:
 * the architecture's metadata keys, the tensor names (`blk.N.attn_q.weight`, ...) and the
 * transforms — Llama q/k rows permuted from the Hub's half-split RoPE layout to the interleaved
 * one llama.cpp's `llama` architecture rotates (`LlamaModel.permute`); GPT-2's Conv1D [in, out]
 * weights transposed to [out, in]. Qwen2 runs NEOX-style RoPE in llama.cpp and is not permuted.
 * Supported: llama / mistral (arch `llama`), qwen2 (arch `qwen2`), gpt2 (arch `gpt2`).
 */
import { ConfigError } from '../../errors.ts';
import type { JsonObject } from '../json.ts';
import { type GgufKv, ggufKv } from './writer.ts';

/** How a source tensor becomes a GGUF tensor. */
export type TensorTransform =
  | { kind: 'none' }
  /** Rows regrouped per head from [half, half] to interleaved pairs; `heads` is the head count of this projection. */
  | { kind: 'permute'; heads: number }
  /** A 2-D [in, out] Conv1D weight written as [out, in]. */
  | { kind: 'transpose' };

/** Where one Hub tensor goes. */
export interface TensorMapping {
  /** The GGUF name (`blk.0.attn_q.weight`). */
  name: string;
  transform: TensorTransform;
}

/** An architecture's GGUF facts, from a config.json object. */
export interface GgufArchitecture {
  /** `general.architecture`. */
  arch: 'llama' | 'qwen2' | 'gpt2';
  /** The `<arch>.*` hyper-parameter entries (file type and general.* are added by the exporter). */
  metadata: GgufKv[];
  /** The GGUF mapping of a Hub tensor name, or null when the name is not one of this architecture's. */
  map(hubName: string): TensorMapping | null;
  /** Extra GGUF names a Hub tensor is also written under (GPT-2 writes its tied head as output.weight). */
  copies(ggufName: string): string[];
  /** Tensors the converter generates from the config (llama3 `rope_freqs.weight`). */
  generated: { name: string; values: Float32Array }[];
  /** Hub names every checkpoint of this config must hold. */
  required: string[];
}

const LLAMA_LAYER: Record<string, string> = {
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
  input_layernorm: 'attn_norm',
  post_attention_layernorm: 'ffn_norm',
};

const GPT2_LAYER: Record<string, string> = {
  ln_1: 'attn_norm',
  'attn.c_attn': 'attn_qkv',
  'attn.c_proj': 'attn_output',
  ln_2: 'ffn_norm',
  'mlp.c_fc': 'ffn_up',
  'mlp.c_proj': 'ffn_down',
};

/** The GGUF block-tensor base name (`attn_q`) of a llama-family module path (`self_attn.q_proj`). */
export function llamaBlockName(module: string): string | undefined {
  return LLAMA_LAYER[module];
}

function num(config: JsonObject, key: string, where: string, fallback?: number): number {
  const value = config[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new ConfigError(
      `${where}: '${key}' must be a number for GGUF export, found ${JSON.stringify(value)}`,
    );
  return value;
}

/** llama.cpp's `rope_freqs` divisors for llama3 rope scaling (convert_hf_to_gguf LlamaModel). */
function llama3RopeFactors(rs: JsonObject, headDim: number, theta: number, where: string): Float32Array {
  const factor = num(rs, 'factor', `${where} rope_scaling`, 8);
  const low = num(rs, 'low_freq_factor', `${where} rope_scaling`, 1);
  const high = num(rs, 'high_freq_factor', `${where} rope_scaling`, 4);
  const oldContext = num(rs, 'original_max_position_embeddings', `${where} rope_scaling`, 8192);
  const lowWavelen = oldContext / low;
  const highWavelen = oldContext / high;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldContext / wavelen - low) / (high - low);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}

function llamaFamily(config: JsonObject, where: string): GgufArchitecture {
  const type = config.model_type as string;
  const arch = type === 'qwen2' ? 'qwen2' : 'llama';
  const hidden = num(config, 'hidden_size', where);
  const heads = num(config, 'num_attention_heads', where);
  const kvHeads = num(config, 'num_key_value_heads', where, heads);
  const layers = num(config, 'num_hidden_layers', where);
  const headDim = num(config, 'head_dim', where, hidden / heads);
  const theta = num(config, 'rope_theta', where, 10000);
  const context = num(config, 'max_position_embeddings', where, 2048);
  const window = config.sliding_window;
  const windowOn = type === 'mistral' || (type === 'qwen2' && config.use_sliding_window === true);
  if (windowOn && typeof window === 'number' && window < context)
    throw new ConfigError(
      `${where}: 'sliding_window' = ${window} is shorter than 'max_position_embeddings' (${context}); llama.cpp's ${arch} architecture has no sliding window, so the GGUF would compute different attention`,
    );
  const metadata: GgufKv[] = [
    ggufKv.u32(`${arch}.context_length`, context),
    ggufKv.u32(`${arch}.embedding_length`, hidden),
    ggufKv.u32(`${arch}.block_count`, layers),
    ggufKv.u32(`${arch}.feed_forward_length`, num(config, 'intermediate_size', where)),
    ggufKv.u32(`${arch}.attention.head_count`, heads),
    ggufKv.u32(`${arch}.attention.head_count_kv`, kvHeads),
    ggufKv.f32(`${arch}.rope.freq_base`, theta),
    ggufKv.f32(`${arch}.attention.layer_norm_rms_epsilon`, num(config, 'rms_norm_eps', where, 1e-6)),
  ];
  if (headDim !== hidden / heads)
    metadata.push(
      ggufKv.u32(`${arch}.attention.key_length`, headDim),
      ggufKv.u32(`${arch}.attention.value_length`, headDim),
    );
  if (arch === 'llama') {
    metadata.push(ggufKv.u32('llama.vocab_size', num(config, 'vocab_size', where)));
    metadata.push(ggufKv.u32('llama.rope.dimension_count', headDim));
  }
  const generated: GgufArchitecture['generated'] = [];
  const rs = config.rope_scaling as JsonObject | null | undefined;
  const ropeType = rs ? (rs.rope_type ?? rs.type) : undefined;
  if (rs && ropeType !== 'default') {
    if (ropeType !== 'llama3' || arch !== 'llama')
      throw new ConfigError(
        `${where}: 'rope_scaling' type ${JSON.stringify(ropeType)} is not supported by the GGUF export (supported: llama3 on llama)`,
      );
    generated.push({ name: 'rope_freqs.weight', values: llama3RopeFactors(rs, headDim, theta, where) });
  }
  const tied = config.tie_word_embeddings === true;
  const permute = arch === 'llama';
  const required = ['model.embed_tokens.weight', 'model.norm.weight'];
  if (!tied) required.push('lm_head.weight');
  for (let i = 0; i < layers; i++)
    for (const module of Object.keys(LLAMA_LAYER)) required.push(`model.layers.${i}.${module}.weight`);
  return {
    arch,
    metadata,
    generated,
    required,
    copies: () => [],
    map(hubName) {
      if (hubName === 'model.embed_tokens.weight')
        return { name: 'token_embd.weight', transform: { kind: 'none' } };
      if (hubName === 'model.norm.weight') return { name: 'output_norm.weight', transform: { kind: 'none' } };
      if (hubName === 'lm_head.weight')
        return tied ? null : { name: 'output.weight', transform: { kind: 'none' } };
      const match = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hubName);
      const base = match ? LLAMA_LAYER[match[2]!] : undefined;
      if (!match || !base || Number(match[1]) >= layers) return null;
      const name = `blk.${match[1]}.${base}.${match[3]}`;
      if (permute && base === 'attn_q') return { name, transform: { kind: 'permute', heads } };
      if (permute && base === 'attn_k') return { name, transform: { kind: 'permute', heads: kvHeads } };
      return { name, transform: { kind: 'none' } };
    },
  };
}

function gpt2(config: JsonObject, where: string): GgufArchitecture {
  const hidden = num(config, 'n_embd', where);
  const layers = num(config, 'n_layer', where);
  const inner = config.n_inner ?? null;
  const metadata: GgufKv[] = [
    ggufKv.u32('gpt2.block_count', layers),
    ggufKv.u32('gpt2.context_length', num(config, 'n_ctx', where, num(config, 'n_positions', where, 1024))),
    ggufKv.u32('gpt2.embedding_length', hidden),
    ggufKv.u32('gpt2.feed_forward_length', inner === null ? 4 * hidden : num(config, 'n_inner', where)),
    ggufKv.u32('gpt2.attention.head_count', num(config, 'n_head', where)),
    ggufKv.f32('gpt2.attention.layer_norm_epsilon', num(config, 'layer_norm_epsilon', where, 1e-5)),
  ];
  const required = ['transformer.wte.weight', 'transformer.wpe.weight', 'transformer.ln_f.weight'];
  for (let i = 0; i < layers; i++)
    for (const module of Object.keys(GPT2_LAYER)) required.push(`transformer.h.${i}.${module}.weight`);
  return {
    arch: 'gpt2',
    metadata,
    generated: [],
    required,
    // the converter writes GPT-2's tied head as its own tensor
    copies: (name) => (name === 'token_embd.weight' ? ['output.weight'] : []),
    map(hubName) {
      const top: Record<string, string> = {
        'transformer.wte.weight': 'token_embd.weight',
        'transformer.wpe.weight': 'position_embd.weight',
        'transformer.ln_f.weight': 'output_norm.weight',
        'transformer.ln_f.bias': 'output_norm.bias',
      };
      if (top[hubName]) return { name: top[hubName], transform: { kind: 'none' } };
      if (hubName === 'lm_head.weight') return null; // tied: the copy of token_embd is written instead
      const match = /^transformer\.h\.(\d+)\.(.+)\.(weight|bias)$/.exec(hubName);
      const base = match ? GPT2_LAYER[match[2]!] : undefined;
      if (!match || !base || Number(match[1]) >= layers) return null;
      const conv = match[3] === 'weight' && !base.endsWith('_norm');
      return {
        name: `blk.${match[1]}.${base}.${match[3]}`,
        transform: conv ? { kind: 'transpose' } : { kind: 'none' },
      };
    },
  };
}

/** The GGUF architecture of a config.json object (`where` names the file in errors). */
export function ggufArchitecture(config: JsonObject, where: string): GgufArchitecture {
  const type = config.model_type;
  if (type === 'llama' || type === 'mistral' || type === 'qwen2') return llamaFamily(config, where);
  if (type === 'gpt2') return gpt2(config, where);
  throw new ConfigError(
    `${where}: 'model_type' = ${JSON.stringify(type)} has no GGUF export (supported: llama, mistral, qwen2, gpt2)`,
  );
}

/**
 * Rows of a [rows, cols] matrix (or a [rows] bias, cols = 1) regrouped per head from the Hub's
 * rotate-half layout to llama.cpp's interleaved pairs: within each head of size 2h, new row 2j
 * is old row j and new row 2j+1 is old row h + j (numpy: reshape(heads, 2, h, cols).swapaxes(1, 2)).
 */
export function permuteRows(values: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  if (rows % (2 * heads) !== 0)
    throw new ConfigError(
      `cannot permute ${rows} rows for ${heads} heads (rows must be a multiple of 2 x heads)`,
    );
  const half = rows / heads / 2;
  const out = new Float32Array(values.length);
  for (let head = 0; head < heads; head++)
    for (let j = 0; j < half; j++)
      for (let t = 0; t < 2; t++) {
        const from = (head * 2 * half + t * half + j) * cols;
        const to = (head * 2 * half + j * 2 + t) * cols;
        out.set(values.subarray(from, from + cols), to);
      }
  return out;
}

/** A [rows, cols] matrix transposed to [cols, rows]. */
export function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}
