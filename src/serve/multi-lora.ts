/**
 * Several LoRA adapters over one base model, chosen per batch row.
 *
 * Each adapter is read with the lora tuner (`loadAdapter`: all of its validation), its matrices are
 * copied out and the tuner is unloaded again, so the base is left as it was. Every module any
 * adapter targets is then replaced by a `MultiLoraLinear`, which runs the base layer on the whole
 * batch and adds each adapter's `scaling * B (A x)` to the rows routed to it. The decode loop sorts
 * its rows by adapter, so each adapter's rows are one contiguous range: one slice, two small GEMMs
 * and one add per adapter and module, and the base GEMM stays one batched call. A row's result never
 * depends on the other rows (row-independent GEMMs, as `generateBatch` relies on), so batching does
 * not change any sequence's answer.
 *
 * Plain LoRA and rsLoRA only: DoRA, KaSA and the base-rewriting inits (PiSSA, OLoRA, CorDA) change
 * the base weights or the layer's math and are refused with the adapter's file named; merge such an
 * adapter into a model (attune export --merge) and serve that.
 */
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { readJsonObject } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { Linear, Module } from '../nn/index.ts';
import { ADAPTER_CONFIG_FILE, LoraAdapter, loadAdapter, loraConfigFromAdapterJson } from '../peft/index.ts';
import { add, concat, matmul, mulScalar, slice, Tensor } from '../tensor/index.ts';

/** One adapter's update of one module: scaling * B A, A [r, in], B [out, r] (f32 copies). */
interface LoraDelta {
  a: Tensor;
  b: Tensor;
  scaling: number;
}

/** A contiguous range of batch rows [start, end) that use adapter `adapter` (-1 = the base alone). */
export interface RowGroup {
  adapter: number;
  start: number;
  end: number;
}

/** Which adapter each batch row of the next forward uses (set by the decode loop before it). */
export class AdapterRouter {
  /** Row ranges by adapter; null = every row runs the base alone. */
  groups: readonly RowGroup[] | null = null;

  /** Run `f` with every row of its forward on `adapter` (-1 = base). */
  withAdapter<T>(adapter: number, rows: number, f: () => T): T {
    const saved = this.groups;
    this.groups = [{ adapter, start: 0, end: rows }];
    try {
      return f();
    } finally {
      this.groups = saved;
    }
  }
}

/** A Linear with per-row LoRA updates of several adapters; see the file comment. */
export class MultiLoraLinear extends Module {
  readonly base: Linear;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Adapter index -> its update of this module (absent: the adapter does not target it). */
  readonly deltas = new Map<number, LoraDelta>();

  /** Wrap `base`; the same weight and bias Parameters stay registered under their names. */
  constructor(
    base: Linear,
    private readonly router: AdapterRouter,
  ) {
    super();
    this.base = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.training = base.training;
    this.registerParameter('weight', base.weight);
    this.registerParameter('bias', base.bias);
  }

  /** x [B, T, in] (or [B, in]) -> [B, T, out]: the base on every row plus each row's adapter update. */
  forward(x: Tensor): Tensor {
    const y = this.base.forward(x);
    const groups = this.router.groups;
    if (groups === null || !groups.some((g) => this.deltas.has(g.adapter))) return y;
    if (groups.length === 1) return add(y, this.update(x, this.deltas.get(groups[0]!.adapter)!));
    const parts = groups.map((g) => {
      const rows = slice(y, 0, g.start, g.end);
      const delta = this.deltas.get(g.adapter);
      return delta ? add(rows, this.update(slice(x, 0, g.start, g.end), delta)) : rows;
    });
    return concat(parts, 0);
  }

  /** scaling * B (A x), in LoraLinear's order of operations. */
  private update(x: Tensor, delta: LoraDelta): Tensor {
    const ax = matmul(x, delta.a, { transB: true });
    const bax = matmul(ax, delta.b, { transB: true });
    return delta.scaling === 1 ? bax : mulScalar(bax, delta.scaling);
  }
}

/** A served adapter: its name, directory and the modules it adapts. */
export interface ServedAdapter {
  name: string;
  dir: string;
  modules: string[];
}

/** The adapters installed over one model, and the router the decode loop sets. */
export interface AdapterSet {
  router: AdapterRouter;
  adapters: ServedAdapter[];
  /** Index of the adapter called `name`, or -1 when there is none. */
  indexOf(name: string): number;
}

/**
 * Read each adapter (name -> directory) and install them all over `model` (see the file comment).
 * Validates every adapter before changing the model; an adapter that is not plain LoRA over Linear
 * layers is a ConfigError naming its file.
 */
export function installAdapters(
  model: CausalLM,
  adapters: readonly { name: string; dir: string }[],
): AdapterSet {
  const router = new AdapterRouter();
  const perAdapter = adapters.map(({ name, dir }) => ({ name, dir, deltas: readLoraDeltas(model, dir) }));
  const layers = new Map<string, MultiLoraLinear>();
  perAdapter.forEach((adapter, index) => {
    for (const [path, delta] of adapter.deltas) {
      let layer = layers.get(path);
      if (!layer) {
        const base = model.getSubmodule(path);
        if (!(base instanceof Linear))
          throw new ConfigError(
            `${join(adapter.dir, ADAPTER_CONFIG_FILE)}: module '${path}' is not a Linear layer`,
          );
        layer = new MultiLoraLinear(base, router);
        layers.set(path, layer);
      }
      layer.deltas.set(index, delta);
    }
  });
  for (const [path, layer] of layers) model.setSubmodule(path, layer);
  const served = perAdapter.map(({ name, dir, deltas }) => ({ name, dir, modules: [...deltas.keys()] }));
  return { router, adapters: served, indexOf: (name) => served.findIndex((a) => a.name === name) };
}

/** The LoRA matrices of the adapter in `dir`, by module path, read through the lora tuner and unloaded. */
function readLoraDeltas(model: CausalLM, dir: string): Map<string, LoraDelta> {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  // refuses DoRA, KaSA, PiSSA/OLoRA/CorDA and Conv1D (fan_in_fan_out) adapters before anything is applied
  loraConfigFromAdapterJson(readJsonObject(file, 'a PEFT adapter config'), file);
  const adapter = loadAdapter(model, dir);
  try {
    if (!(adapter instanceof LoraAdapter))
      throw new ConfigError(`${file}: serve runs LoRA adapters only, found the '${adapter.method}' method`);
    const deltas = new Map<string, LoraDelta>();
    for (const [path, layer] of adapter.layers()) {
      const copy = (t: Tensor) => Tensor.wrap(Float32Array.from(t.data as ArrayLike<number>), t.shape);
      deltas.set(path, {
        a: copy(layer.lora_A.weight),
        b: copy(layer.lora_B.weight),
        scaling: layer.scaling,
      });
    }
    return deltas;
  } finally {
    adapter.unload();
  }
}
