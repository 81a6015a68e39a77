/**
 * Structured sparse fine-tuning (S2FT: "S2FT: Efficient, Scalable and Generalizable LLM
 * Fine-tuning by Structured Sparsity"), registered as the tuner 's2ft' (peft_type "S2FT").
 *
 * Selection (seeded by train.seed, drawn once at `apply`): `heads_ratio` of all attention heads of
 * the model and `channels_ratio` of all FFN channels, uniformly at random across layers (the pairs
 * (layer, head) and (layer, channel) are drawn together, so layers get different counts). Of a
 * selected head h, the slice of each `head_modules` matrix that belongs to it trains: `o_proj`'s
 * input columns [h*hd, (h+1)*hd) and `v_proj`'s output rows of h's KV group (grouped-query
 * attention: KV head floor(h / (heads / kv_heads)); `q_proj` / `k_proj` rows likewise). Of a
 * selected channel c: `up_proj` / `gate_proj` row c and `down_proj` column c (`channel_modules`).
 * So a coupled structure (a head's value and output slices, a channel's in and out weights) trains
 * together, as in the paper. Everything else is frozen and stays bit-identical.
 *
 * The selected slices are zero-initialised deltas on top of the frozen weight, stored as a sparse
 * delta over the slice's entries (SparseDeltaLinear): the only gradient buffers are the selected
 * entries' — none for unselected rows / columns, none for W. (The paper permutes the selected
 * rows / columns together and runs dense GEMMs on the slices; here the slice's gradient is
 * `rowPairDots` over its entries, O(k N) work as a dense slice GEMM, without BLAS blocking.)
 *
 * Files: the sparse delta layout (docs/formats.md) with `peft_type: "S2FT"`, `target_entries` and
 * the selection (`selected_heads`, `selected_channels`: per layer) in adapter_config.json.
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import { LlamaAttention, LlamaMLP } from '../models/index.ts';
import { Linear, type Module } from '../nn/index.ts';
import { Rng } from '../tensor/index.ts';
import { installSparseDeltas, SparseDeltaAdapter, sparseEntriesFromJson } from './sparse-delta-adapter.ts';
import { randomPositions } from './top-k.ts';
import { registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** The peft_type of s2ft adapter directories (Attune's own). */
export const S2FT_PEFT_TYPE = 'S2FT';

const HEAD_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
const CHANNEL_MODULES = ['gate_proj', 'up_proj', 'down_proj'] as const;
type HeadModule = (typeof HEAD_MODULES)[number];
type ChannelModule = (typeof CHANNEL_MODULES)[number];

export interface S2ftConfig {
  /** Fraction of all attention heads selected (default 0.05). */
  headsRatio?: number;
  /** Fraction of all FFN channels selected (default 0.05). */
  channelsRatio?: number;
  /** Matrices whose slices of the selected heads train (default v_proj, o_proj). */
  headModules?: HeadModule[];
  /** Matrices whose slices of the selected channels train (default up_proj, down_proj). */
  channelModules?: ChannelModule[];
  /** Seed of the draw (the run's train.seed). */
  seed?: number;
  /** Exactly these targets and entry counts (an adapter directory being loaded). */
  stored?: { targets: string[]; entries: number[] };
}

/** Selected heads and channels per layer (ascending). */
export interface S2ftSelection {
  heads: number[][];
  channels: number[][];
}

interface LlamaBlock {
  prefix: string;
  attention: LlamaAttention;
  mlp: LlamaMLP;
}

function llamaBlocks(model: Module): LlamaBlock[] {
  const attn = new Map<string, LlamaAttention>();
  const mlps = new Map<string, LlamaMLP>();
  for (const [name, m] of model.namedModules()) {
    const dot = name.lastIndexOf('.');
    if (m instanceof LlamaAttention) attn.set(name.slice(0, dot), m);
    if (m instanceof LlamaMLP) mlps.set(name.slice(0, dot), m);
  }
  const blocks = [...attn].flatMap(([prefix, attention]) => {
    const mlp = mlps.get(prefix);
    return mlp ? [{ prefix, attention, mlp }] : [];
  });
  if (blocks.length === 0)
    throw new ConfigError(
      `s2ft: the model (${model.constructor.name}) has no llama-family decoder layers (self_attn + mlp); s2ft supports the llama family`,
    );
  return blocks;
}

/** Draw `ratio` of `perLayer * layers` (layer, unit) pairs uniformly; returns the units per layer. */
function drawAcrossLayers(layers: number, perLayer: number, ratio: number, rng: Rng): number[][] {
  const total = layers * perLayer;
  const n = ratio > 0 ? Math.max(1, Math.round(ratio * total)) : 0;
  const out: number[][] = Array.from({ length: layers }, () => []);
  for (const p of randomPositions(total, n, rng)) out[Math.floor(p / perLayer)]!.push(p % perLayer);
  return out;
}

/** The heads and channels S2FT trains on `model` with `seed` (a pure function of its arguments). */
export function s2ftSelection(
  model: Module,
  headsRatio: number,
  channelsRatio: number,
  seed: number,
): S2ftSelection {
  const blocks = llamaBlocks(model);
  const { numHeads, intermediateSize } = blocks[0]!.attention.config;
  const rng = new Rng(seed);
  return {
    heads: drawAcrossLayers(blocks.length, numHeads, headsRatio, rng),
    channels: drawAcrossLayers(blocks.length, intermediateSize, channelsRatio, rng),
  };
}

/** Flat positions of whole rows `rows` of a [rows x cols] weight (ascending). */
function rowEntries(rows: readonly number[], cols: number): Int32Array {
  const out = new Int32Array(rows.length * cols);
  let o = 0;
  for (const r of [...rows].sort((a, b) => a - b)) for (let c = 0; c < cols; c++) out[o++] = r * cols + c;
  return out;
}

/** Flat positions of whole columns `columns` of a [rows x cols] weight (ascending). */
function columnEntries(columns: readonly number[], rows: number, cols: number): Int32Array {
  const sorted = [...columns].sort((a, b) => a - b);
  const out = new Int32Array(sorted.length * rows);
  let o = 0;
  for (let r = 0; r < rows; r++) for (const c of sorted) out[o++] = r * cols + c;
  return out;
}

/** Output rows of `proj` that belong to the query heads `heads` (deduplicated KV groups for k/v). */
function headRows(proj: HeadModule, heads: readonly number[], c: LlamaAttention['config']): number[] {
  const group = c.numHeads / c.numKvHeads;
  const owners = proj === 'q_proj' ? heads : [...new Set(heads.map((h) => Math.floor(h / group)))];
  return owners.flatMap((h) => Array.from({ length: c.headDim }, (_, i) => h * c.headDim + i));
}

/** The targets and their entries for a selection. */
export function s2ftTargets(
  model: Module,
  selection: S2ftSelection,
  headModules: readonly HeadModule[],
  channelModules: readonly ChannelModule[],
): [string, Linear, Int32Array][] {
  const out: [string, Linear, Int32Array][] = [];
  llamaBlocks(model).forEach((b, layer) => {
    const heads = selection.heads[layer] ?? [];
    const channels = selection.channels[layer] ?? [];
    const c = b.attention.config;
    for (const proj of HEAD_MODULES) {
      if (!headModules.includes(proj) || heads.length === 0) continue;
      const m = b.attention[proj];
      const [rows, cols] = m.weight.shape as [number, number];
      const entries =
        proj === 'o_proj'
          ? columnEntries(
              heads.flatMap((h) => Array.from({ length: c.headDim }, (_, i) => h * c.headDim + i)),
              rows,
              cols,
            )
          : rowEntries(headRows(proj, heads, c), cols);
      out.push([`${b.prefix}.self_attn.${proj}`, m, entries]);
    }
    for (const proj of CHANNEL_MODULES) {
      if (!channelModules.includes(proj) || channels.length === 0) continue;
      const m = b.mlp[proj];
      const [rows, cols] = m.weight.shape as [number, number];
      const entries = proj === 'down_proj' ? columnEntries(channels, rows, cols) : rowEntries(channels, cols);
      out.push([`${b.prefix}.mlp.${proj}`, m, entries]);
    }
  });
  return out;
}

/** S2FT's adapter (fixed structured sparse deltas), with its selection. */
export class S2ftAdapter extends SparseDeltaAdapter {
  /** The selected heads and channels per layer (null for a loaded adapter: the indices say it). */
  constructor(
    model: Module,
    layers: ConstructorParameters<typeof SparseDeltaAdapter>[3],
    flags: ConstructorParameters<typeof SparseDeltaAdapter>[4],
    readonly selection: S2ftSelection | null,
    json: Record<string, unknown>,
  ) {
    super('s2ft', S2FT_PEFT_TYPE, model, layers, flags, () => ({
      ...(json as Record<string, never>),
      ...(selection ? { selected_heads: selection.heads, selected_channels: selection.channels } : {}),
    }));
  }
}

/** The s2ft options of a training config. */
export const s2ftOptions = z.object({
  heads_ratio: z
    .number()
    .min(0)
    .max(1)
    .default(0.05)
    .describe('fraction of all attention heads selected, at random across layers'),
  channels_ratio: z
    .number()
    .min(0)
    .max(1)
    .default(0.05)
    .describe('fraction of all FFN channels selected, at random across layers'),
  head_modules: z
    .array(z.enum(HEAD_MODULES))
    .default(['v_proj', 'o_proj'])
    .describe("attention matrices whose selected heads' rows (q/k/v) or columns (o) train"),
  channel_modules: z
    .array(z.enum(CHANNEL_MODULES))
    .default(['up_proj', 'down_proj'])
    .describe("MLP matrices whose selected channels' rows (up/gate) or columns (down) train"),
});

/** The 's2ft' tuner. */
export const s2ftTuner: Tuner<S2ftConfig> = {
  name: 's2ft',
  description:
    'structured sparse fine-tuning: random heads (v/o slices) and FFN channels (up/down slices) train as zero-initialised deltas',
  peftType: S2FT_PEFT_TYPE,
  options: s2ftOptions,
  fromOptions(options, context): S2ftConfig {
    const o = s2ftOptions.parse(options);
    return {
      headsRatio: o.heads_ratio,
      channelsRatio: o.channels_ratio,
      headModules: o.head_modules,
      channelModules: o.channel_modules,
      seed: context.seed,
    };
  },
  configFromAdapterJson(json, file): S2ftConfig {
    if (json.peft_type !== S2FT_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "S2FT"`);
    return { stored: sparseEntriesFromJson(json, file) };
  },
  apply(model, config = {}) {
    const flags = snapshotTrainable(model);
    if (config.stored) {
      const { targets, entries } = config.stored;
      const byName = new Map(model.namedModules());
      const modules = targets.map((t): [string, Linear] => {
        const m = byName.get(t);
        if (!(m instanceof Linear)) throw new ConfigError(`s2ft: the model has no Linear '${t}'`);
        if (entries[targets.indexOf(t)]! > m.weight.size)
          throw new ConfigError(`s2ft: '${t}' has ${m.weight.size} entries, fewer than the stored count`);
        return [t, m];
      });
      const layers = installSparseDeltas(model, modules, (i) =>
        Int32Array.from({ length: entries[i]! }, (_, j) => j),
      );
      return new S2ftAdapter(model, layers, flags, null, {});
    }
    const headsRatio = config.headsRatio ?? 0.05;
    const channelsRatio = config.channelsRatio ?? 0.05;
    const headModules = config.headModules ?? ['v_proj', 'o_proj'];
    const channelModules = config.channelModules ?? ['up_proj', 'down_proj'];
    for (const [key, r] of [
      ['heads_ratio', headsRatio],
      ['channels_ratio', channelsRatio],
    ] as const)
      if (!(r >= 0 && r <= 1)) throw new ConfigError(`s2ft: ${key} must be in [0, 1], found ${r}`);
    const selection = s2ftSelection(model, headsRatio, channelsRatio, config.seed ?? 0);
    const targets = s2ftTargets(model, selection, headModules, channelModules);
    if (targets.length === 0)
      throw new ConfigError(
        's2ft: nothing selected (heads_ratio and channels_ratio are 0, or head_modules and channel_modules are empty)',
      );
    for (const [name, m] of targets)
      if (m.weight.dtype !== 'f32' && m.weight.dtype !== 'f64')
        throw new ConfigError(`s2ft: '${name}.weight' is ${m.weight.dtype}; load the model in f32 for s2ft`);
    const layers = installSparseDeltas(
      model,
      targets.map(([n, m]) => [n, m]),
      (i) => targets[i]![2],
    );
    return new S2ftAdapter(model, layers, flags, selection, {
      heads_ratio: headsRatio,
      channels_ratio: channelsRatio,
      head_modules: headModules,
      channel_modules: channelModules,
    });
  },
};

registerTuner('s2ft', s2ftTuner);
