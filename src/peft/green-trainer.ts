/**
 * GreenTrainer ("Towards Green AI in Fine-tuning Large Language Models via Adaptive
 * Backpropagation"), registered as the tuner 'green_trainer' (peft_type "GREEN_TRAINER"): the
 * model's own matrices train in place, but each interval only the set of tensors that maximises the
 * total importance under a FLOPs budget; the others get no weight gradient (frozen, so the backward
 * skips their dW and, below the deepest selected tensor, the activation gradients too).
 *
 * Tensors: every attention and MLP matrix of every transformer layer (a matrix with its bias is one
 * unit, layer-groups.ts); embeddings, norms and the LM head stay frozen (deviation: the paper's
 * tensor list includes them). FLOPs model per token for a unit of n weights: forward 2n, weight
 * gradient dW 2n, activation gradient dY 2n (the matmuls; attention scores, norms and activations are
 * left out); the LM head adds 2n forward + 2n dY. A step that trains the set S, whose deepest unit
 * (in backward order: last layer's down_proj first) is m, costs
 * `fw + head_dY + sum_{i before m} dY_i + sum_{i in S} dW_i`; full fine-tuning costs
 * `fw + head_dY + sum dY + sum dW`. The budget is `flops_ratio` (paper's rho, default 0.5) of the
 * latter.
 *
 * Selection (the paper's DP, as a 0/1 knapsack over the units in backward order with the deepest
 * unit enumerated): for each m, the dY prefix down to m is fixed, and the best subset of the units
 * above m fits the rest by dW cost, discretised into `dp_resolution` buckets of the budget.
 * Importance (METHODS.md): `I_k = -sum(g_k * dw_k)`, the first-order loss change of the step's
 * update of tensor k. It is measured on a reselection step (steps 1, 1 + reselect_every, ...), which
 * trains every candidate (a full step: gradients g copied after the backward, W before the update
 * kept, dw = W_after - W_before); the selection then holds until the next reselection. Deviation: the
 * paper reselects every 2 epochs with its own profiled FLOPs; we count steps and use the model above.
 *
 * Reported FLOPs: metrics `green_flops_ratio` (the step's estimated FLOPs / full fine-tuning's) and
 * `green_flops_saved` (1 - the run's mean ratio so far, reselection steps included).
 * Files: partial-full.ts: every candidate matrix whole (the ones never selected are the base's).
 */
import { z } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import type { Module, Parameter } from '../nn/index.ts';
import { Tensor } from '../tensor/index.ts';
import { layerGroups } from './layer-groups.ts';
import { checkTrainableDtypes, PartialFullAdapter, trainedParametersFromJson } from './partial-full.ts';
import { registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** The peft_type of green_trainer adapter directories (Attune's own). */
export const GREEN_TRAINER_PEFT_TYPE = 'GREEN_TRAINER';

/** One selectable tensor (unit) with its per-token backward costs. */
export interface GreenUnit {
  /** Hub names of its parameters. */
  names: string[];
  /** Per-token FLOPs of its weight gradient. */
  dw: number;
  /** Per-token FLOPs of the activation gradient through it. */
  dy: number;
}

/**
 * The subset of `units` (in backward order: index 0 is nearest the loss) maximising the summed
 * `importance` with `sum_{i < m} dy_i + sum_{i in S} dw_i <= budget` (m: the deepest selected),
 * dW costs rounded up to `resolution` buckets of the budget. Always selects at least one unit (the
 * best single fitting one when no positive importance fits); null when none fits.
 */
export function greenSelect(
  units: readonly GreenUnit[],
  importance: ArrayLike<number>,
  budget: number,
  resolution = 1000,
): number[] | null {
  const n = units.length;
  const q = budget / resolution;
  const wOf = (i: number) => Math.ceil(units[i]!.dw / q - 1e-9);
  const dp = new Float64Array(resolution + 1);
  const keep: Uint8Array[] = [];
  let best = Number.NEGATIVE_INFINITY;
  let bestM = -1;
  let bestCap = 0;
  let prefixDy = 0;
  for (let m = 0; m < n; m++) {
    const rest = budget - prefixDy - units[m]!.dw;
    if (rest >= -1e-9 * budget) {
      const cap = Math.min(resolution, Math.floor(Math.max(0, rest) / q + 1e-9));
      const value = importance[m]! + dp[cap]!;
      if (value > best) {
        best = value;
        bestM = m;
        bestCap = cap;
      }
    }
    // add unit m to the knapsack of the units above the next candidate
    const w = wOf(m);
    const v = Math.max(0, importance[m]!);
    const k = new Uint8Array(resolution + 1);
    if (v > 0)
      for (let c = resolution; c >= w; c--) {
        if (dp[c - w]! + v > dp[c]!) {
          dp[c] = dp[c - w]! + v;
          k[c] = 1;
        }
      }
    keep.push(k);
    prefixDy += units[m]!.dy;
    if (prefixDy > budget) break;
  }
  if (bestM < 0) return null;
  const chosen = [bestM];
  let c = bestCap;
  for (let i = bestM - 1; i >= 0; i--) {
    if (keep[i]![c]) {
      chosen.push(i);
      c -= wOf(i);
    }
  }
  return chosen.sort((a, b) => a - b);
}

/** The candidate units of `model` in backward order, and the fixed per-token cost (forward + head dY). */
export function greenUnits(model: Module): { units: GreenUnit[]; fixed: number; full: number } {
  const groups = layerGroups(model);
  const units: GreenUnit[] = [];
  let fixed = 0;
  for (let l = groups.layers.length - 1; l >= 0; l--) {
    const layer = groups.layers[l]!.filter((u) => u.block === 'attention' || u.block === 'mlp');
    for (let i = layer.length - 1; i >= 0; i--) {
      const u = layer[i]!;
      units.push({ names: u.names, dw: 2 * u.size, dy: 2 * u.size });
      fixed += 2 * u.size;
    }
  }
  const params = new Map(model.namedParameters());
  const head = groups.head.length > 0 ? groups.head : groups.embeddings.slice(0, 1);
  for (const n of head) fixed += 4 * (params.get(n)?.size ?? 0);
  const full = fixed + units.reduce((s, u) => s + u.dw + u.dy, 0);
  return { units, fixed, full };
}

/** Per-token FLOPs of a step training the units at `selected` (indices into `units`). */
export function greenStepFlops(
  units: readonly GreenUnit[],
  fixed: number,
  selected: readonly number[],
): number {
  if (selected.length === 0) return fixed;
  const deepest = Math.max(...selected);
  let cost = fixed;
  for (let i = 0; i < deepest; i++) cost += units[i]!.dy;
  for (const i of selected) cost += units[i]!.dw;
  return cost;
}

export interface GreenTrainerConfig {
  /** FLOPs budget as a fraction of full fine-tuning's step (default 0.5). */
  flopsRatio?: number;
  /** Steps between reselections (default 50). */
  reselectEvery?: number;
  /** Buckets of the knapsack (default 1000). */
  dpResolution?: number;
  /** Exactly these parameters (an adapter directory being loaded). */
  trainedParameters?: string[];
}

/** GreenTrainer's adapter; see the file comment. */
export class GreenTrainerAdapter extends PartialFullAdapter {
  private selected: number[];
  private before: Map<string, Float32Array | Float64Array> | null = null;
  private grads: Map<string, Float32Array | Float64Array> | null = null;
  private ratioSum = 0;
  private stepsCounted = 0;
  private lastRatio = 1;
  /** The last reselection's importance per unit (backward order). */
  lastImportance: Float64Array | null = null;

  /** Use the 'green_trainer' tuner. */
  constructor(
    model: Module,
    readonly units: GreenUnit[],
    private readonly fixed: number,
    private readonly full: number,
    private readonly c: Required<Omit<GreenTrainerConfig, 'trainedParameters'>>,
  ) {
    const all = new Set(units.flatMap((u) => u.names));
    super('green_trainer', GREEN_TRAINER_PEFT_TYPE, model, all, snapshotTrainable(model), {
      flops_ratio: c.flopsRatio,
      reselect_every: c.reselectEvery,
      dp_resolution: c.dpResolution,
    });
    this.selected = units.map((_, i) => i);
  }

  /** Indices (backward order) of the units trained now. */
  get selection(): number[] {
    return [...this.selected];
  }

  /** Whether `step` (1-based) measures importance and reselects. */
  isReselectStep(step: number): boolean {
    return (step - 1) % this.c.reselectEvery === 0;
  }

  private activate(indices: readonly number[]): void {
    this.selected = [...indices];
    this.setActive(new Set(indices.flatMap((i) => this.units[i]!.names)));
  }

  /** On a reselection step: train every candidate and keep W before the update. */
  beginStep(step: number): void {
    if (!this.isReselectStep(step)) return;
    this.activate(this.units.map((_, i) => i));
    const params = new Map(this.model.namedParameters());
    this.before = new Map(
      this.units.flatMap((u) =>
        u.names.map((n) => [n, (params.get(n)!.data as Float32Array).slice()] as const),
      ),
    );
  }

  /** On a reselection step: copy the gradients g. */
  afterBackward(): void {
    if (!this.before) return;
    const params = new Map(this.model.namedParameters());
    this.grads = new Map();
    for (const n of this.before.keys()) {
      const g = params.get(n)!.grad;
      if (g) this.grads.set(n, (g.data as Float32Array).slice());
    }
  }

  /** Count the step's FLOPs; on a reselection step compute I_k and select under the budget. */
  afterStep(step: number): void {
    this.lastRatio = greenStepFlops(this.units, this.fixed, this.selected) / this.full;
    this.ratioSum += this.lastRatio;
    this.stepsCounted++;
    if (!this.before || !this.grads || !this.isReselectStep(step)) return;
    const params = new Map(this.model.namedParameters());
    const importance = new Float64Array(this.units.length);
    this.units.forEach((u, i) => {
      let s = 0;
      for (const n of u.names) {
        const g = this.grads!.get(n);
        const w0 = this.before!.get(n)!;
        const w = params.get(n)!.data as Float32Array;
        if (g) for (let j = 0; j < w.length; j++) s -= g[j]! * (w[j]! - w0[j]!);
      }
      importance[i] = s;
    });
    this.before = null;
    this.grads = null;
    this.select(importance);
  }

  /** Select under the budget from `importance` (backward order) and train that set. */
  select(importance: Float64Array): void {
    this.lastImportance = importance;
    const budget = this.c.flopsRatio * this.full - this.fixed;
    const chosen = greenSelect(this.units, importance, budget, this.c.dpResolution);
    if (!chosen)
      throw new ConfigError(
        `green_trainer: flops_ratio ${this.c.flopsRatio} leaves no room to train any tensor (the forward alone is ${(this.fixed / this.full).toFixed(3)} of a full step)`,
      );
    this.activate(chosen);
  }

  /** `green_flops_ratio` of the last step and `green_flops_saved` of the run so far. */
  metrics(): Record<string, number> {
    if (this.stepsCounted === 0) return {};
    return { green_flops_ratio: this.lastRatio, green_flops_saved: 1 - this.ratioSum / this.stepsCounted };
  }

  /** The selection and the FLOPs accounting, for exact resume. */
  trainingState(): Map<string, Tensor> {
    const mask = new Int32Array(this.units.length);
    for (const i of this.selected) mask[i] = 1;
    return new Map([
      ['selected', Tensor.wrap(mask, [mask.length], { track: false })],
      [
        'flops',
        Tensor.wrap(Float64Array.from([this.ratioSum, this.stepsCounted, this.lastRatio]), [3], {
          track: false,
        }),
      ],
    ]);
  }

  /** Restore `trainingState()` (validated first). */
  loadTrainingState(state: ReadonlyMap<string, Tensor>): void {
    const n = this.units.length;
    const sel = state.get('selected');
    const flops = state.get('flops');
    if (sel?.dtype !== 'i32' || sel.size !== n || flops?.size !== 3)
      throw new TensorMismatchError(
        `green_trainer: checkpoint state must hold 'selected' (i32 [${n}]) and 'flops' [3]`,
      );
    const f = flops.floatData();
    this.ratioSum = f[0]!;
    this.stepsCounted = f[1]!;
    this.lastRatio = f[2]!;
    this.activate([...(sel.data as Int32Array)].flatMap((v, i) => (v ? [i] : [])));
  }
}

/** The green_trainer options of a training config. */
export const greenTrainerOptions = z.object({
  flops_ratio: z
    .number()
    .gt(0)
    .max(1)
    .default(0.5)
    .describe("FLOPs budget per step as a fraction of full fine-tuning's (the paper's rho)"),
  reselect_every: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('steps between importance measurements and reselections (each is one full step)'),
  dp_resolution: z.number().int().min(10).default(1000).describe("buckets of the knapsack's FLOPs budget"),
});

/** The 'green_trainer' tuner. */
export const greenTrainerTuner: Tuner<GreenTrainerConfig> = {
  name: 'green_trainer',
  description:
    'GreenTrainer: train the tensors of highest importance -g.dw that fit a FLOPs budget (knapsack), reselected on schedule',
  peftType: GREEN_TRAINER_PEFT_TYPE,
  options: greenTrainerOptions,
  inPlace: true,
  fromOptions(options): GreenTrainerConfig {
    const o = greenTrainerOptions.parse(options);
    return { flopsRatio: o.flops_ratio, reselectEvery: o.reselect_every, dpResolution: o.dp_resolution };
  },
  configFromAdapterJson(json, file) {
    if (json.peft_type !== GREEN_TRAINER_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "GREEN_TRAINER"`);
    return { trainedParameters: trainedParametersFromJson(json, file) };
  },
  apply(model, config = {}) {
    const c = {
      flopsRatio: config.flopsRatio ?? 0.5,
      reselectEvery: config.reselectEvery ?? 50,
      dpResolution: config.dpResolution ?? 1000,
    };
    if (!(c.flopsRatio > 0 && c.flopsRatio <= 1))
      throw new ConfigError(`green_trainer: flops_ratio must be in (0, 1], found ${c.flopsRatio}`);
    if (config.trainedParameters) {
      // a saved adapter: exactly its tensors, one unit each
      const names = config.trainedParameters;
      checkTrainableDtypes('green_trainer', model, names);
      const units = names.map((n) => ({ names: [n], dw: 0, dy: 0 }));
      const a = new GreenTrainerAdapter(model, units, 0, 1, c);
      return a;
    }
    const { units, fixed, full } = greenUnits(model);
    if (units.length === 0)
      throw new ConfigError('green_trainer: the model has no transformer layers (layers.N / h.N)');
    checkTrainableDtypes(
      'green_trainer',
      model,
      units.flatMap((u) => u.names),
    );
    return new GreenTrainerAdapter(model, units, fixed, full, c);
  },
};

registerTuner('green_trainer', greenTrainerTuner);
