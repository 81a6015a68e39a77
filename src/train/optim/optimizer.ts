/**
 * Optimizer base: a flat list of parameters (optionally in groups with their own weight decay),
 * one learning rate set by the schedule, `step()` over the parameters that have a gradient, and
 * `zeroGrad()` releasing gradients to the pool (PyTorch's set_to_none).
 */
import type { FloatArray } from '../../backend/kernels.ts';
import { ConfigError, TensorMismatchError } from '../../errors.ts';
import { formatShape, type Tensor } from '../../tensor/index.ts';

/** Parameters that share a weight decay (e.g. biases and norm weights with 0). */
export interface ParamGroup {
  params: readonly Tensor[];
  /** Overrides the optimizer's weightDecay for these parameters. */
  weightDecay?: number;
}

/** What an optimizer is constructed with: parameters, or groups of them. */
export type ParamsInput = readonly Tensor[] | readonly ParamGroup[];

/** Per-parameter state saved for exact resume. */
export interface ParamStateEntry {
  /** Parameter name (or `param <i>`), for error messages. */
  name: string;
  shape: number[];
  /** Updates applied to this parameter (0 until it first had a gradient). */
  step: number;
  /** Named state buffers (AdamW: m, v; SGD: momentum), copies; null until first used. */
  buffers: Record<string, FloatArray | null>;
}

/** Serialisable optimizer state (typed arrays are copies, safe to keep). */
export interface OptimizerState {
  type: string;
  lr: number;
  /** step() calls so far. */
  stepCount: number;
  /** Hyperparameters (restored on load, like PyTorch's param_groups). */
  hyper: Record<string, number | boolean | number[]>;
  /** Weight decay of each parameter (from its group). */
  weightDecays: number[];
  params: ParamStateEntry[];
}

function isGroupList(input: ParamsInput): input is readonly ParamGroup[] {
  return input.length > 0 && !('shape' in (input[0] as object));
}

/** Throws unless x is a finite number >= 0 (or > 0 when `positive`). */
export function checkNonNegative(x: number, what: string, optimizer: string, positive = false): void {
  if (!Number.isFinite(x) || x < 0 || (positive && x === 0)) {
    throw new ConfigError(
      `${optimizer}: ${what} must be a ${positive ? 'positive' : 'non-negative'} number, found ${x}`,
    );
  }
}

/** Base class of AdamW and SGD. */
export abstract class Optimizer {
  /** Every parameter, in order. */
  readonly params: readonly Tensor[];
  /** Weight decay per parameter (from its group or the default). */
  protected readonly weightDecays: number[];
  /** Updates applied per parameter. */
  protected readonly paramSteps: number[];
  /** Current learning rate. */
  lr: number;
  /** step() calls so far. */
  stepCount = 0;
  protected abstract readonly typeName: string;

  /** Collect the parameters (each once) with their weight decay; float parameters only. */
  constructor(input: ParamsInput, lr: number, defaultWeightDecay: number, name: string) {
    checkNonNegative(lr, 'lr', name);
    checkNonNegative(defaultWeightDecay, 'weightDecay', name);
    const groups: ParamGroup[] = isGroupList(input) ? [...input] : [{ params: input as readonly Tensor[] }];
    const params: Tensor[] = [];
    const decays: number[] = [];
    const seen = new Set<Tensor>();
    for (const g of groups) {
      const wd = g.weightDecay ?? defaultWeightDecay;
      checkNonNegative(wd, 'weightDecay', name);
      for (const p of g.params) {
        if (seen.has(p)) throw new ConfigError(`${name}: ${p.describe()} is listed twice`);
        if (p.dtype !== 'f32' && p.dtype !== 'f64') {
          throw new ConfigError(
            `${name}: ${p.describe()} cannot be optimized (only f32/f64 parameters; freeze it)`,
          );
        }
        seen.add(p);
        params.push(p);
        decays.push(wd);
      }
    }
    this.params = params;
    this.weightDecays = decays;
    this.paramSteps = params.map(() => 0);
    this.lr = lr;
  }

  /** Set the learning rate (the schedule calls this before each step). */
  setLr(lr: number): void {
    checkNonNegative(lr, 'lr', this.typeName);
    this.lr = lr;
  }

  /** Current learning rate. */
  getLr(): number {
    return this.lr;
  }

  /** Apply one update to every parameter that has a gradient (others are skipped). */
  step(): void {
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g || !p.requiresGrad) return;
      if (g.size !== p.size || g.dtype !== p.dtype) {
        throw new TensorMismatchError(
          `${this.typeName}.step: gradient ${formatShape(g.shape)} ${g.dtype} does not match ${p.describe()}`,
        );
      }
      this.paramSteps[i]!++;
      this.update(i, p.data as FloatArray, g.data as FloatArray);
    });
    this.stepCount++;
  }

  /** Update parameter i in place from its gradient (paramSteps[i] already counts this update). */
  protected abstract update(i: number, p: FloatArray, g: FloatArray): void;

  /** Release every parameter's gradient (grad = null). */
  zeroGrad(): void {
    for (const p of this.params) {
      if (p.grad) {
        p.grad.release();
        p.grad = null;
      }
    }
  }

  /**
   * Zero the state of `param` at flat `positions` (a tuner replaced those entries, e.g. sparse FT's
   * regrowth). Buffers with one value per entry are zeroed there; others (SM3's row and column
   * accumulators of a matrix) are left, as they do not belong to single entries.
   */
  resetEntries(param: Tensor, positions: ArrayLike<number>): void {
    const i = this.params.indexOf(param);
    if (i < 0)
      throw new ConfigError(`${this.typeName}.resetEntries: ${param.describe()} is not optimized here`);
    for (const b of Object.values(this.buffersOf(i))) {
      if (!b || b.length !== param.size) continue;
      for (let j = 0; j < positions.length; j++) b[positions[j]!] = 0;
    }
  }

  /** Length buffer `key` of parameter i must have in a saved state (default: one value per entry). */
  protected bufferLength(i: number, _key: string): number {
    return this.params[i]!.size;
  }

  /** Named per-parameter buffers of parameter i (live arrays or null). */
  protected abstract buffersOf(i: number): Record<string, FloatArray | null>;
  /** Install buffers for parameter i (already validated copies). */
  protected abstract setBuffers(i: number, buffers: Record<string, FloatArray | null>): void;
  /** Hyperparameters to save. */
  protected abstract hyper(): Record<string, number | boolean | number[]>;
  /** Restore saved hyperparameters (validated by the subclass). */
  protected abstract setHyper(hyper: Record<string, number | boolean | number[]>): void;

  /** A copy of the full state: hyperparameters, step counters and moment buffers. */
  stateDict(): OptimizerState {
    return {
      type: this.typeName,
      lr: this.lr,
      stepCount: this.stepCount,
      hyper: structuredClone(this.hyper()),
      weightDecays: [...this.weightDecays],
      params: this.params.map((p, i) => {
        const buffers: Record<string, FloatArray | null> = {};
        for (const [k, b] of Object.entries(this.buffersOf(i))) buffers[k] = b ? b.slice() : null;
        return { name: p.name ?? `param ${i}`, shape: [...p.shape], step: this.paramSteps[i]!, buffers };
      }),
    };
  }

  /**
   * Restore a state saved by `stateDict()` of an optimizer over the same parameters (same order and
   * shapes). Everything is validated before anything changes; buffers are copied.
   */
  loadStateDict(state: OptimizerState): void {
    const where = `${this.typeName}.loadStateDict`;
    if (state.type !== this.typeName) {
      throw new TensorMismatchError(`${where}: the state is for ${state.type}, not ${this.typeName}`);
    }
    if (state.params.length !== this.params.length) {
      throw new TensorMismatchError(
        `${where}: the state has ${state.params.length} parameters, this optimizer ${this.params.length}`,
      );
    }
    const problems: string[] = [];
    state.params.forEach((entry, i) => {
      const p = this.params[i]!;
      const label = `parameter ${i} (${p.name ?? entry.name})`;
      if (entry.shape.length !== p.shape.length || entry.shape.some((d, j) => d !== p.shape[j])) {
        problems.push(`${label}: expected shape ${formatShape(p.shape)}, found ${formatShape(entry.shape)}`);
        return;
      }
      const own = Object.keys(this.buffersOf(i)).sort();
      const found = Object.keys(entry.buffers).sort();
      if (own.join() !== found.join()) {
        problems.push(`${label}: expected buffers [${own.join(', ')}], found [${found.join(', ')}]`);
        return;
      }
      for (const [k, b] of Object.entries(entry.buffers)) {
        if (!b) continue;
        const rightType = p.dtype === 'f64' ? b instanceof Float64Array : b instanceof Float32Array;
        const length = this.bufferLength(i, k);
        if (b.length !== length || !rightType) {
          problems.push(
            `${label}: buffer '${k}' must be a ${p.dtype === 'f64' ? 'Float64Array' : 'Float32Array'} of ${length}, found ${b.constructor.name} of ${b.length}`,
          );
        }
      }
      if (!Number.isInteger(entry.step) || entry.step < 0)
        problems.push(`${label}: invalid step ${entry.step}`);
    });
    if (state.weightDecays.length !== this.params.length) {
      problems.push(`weightDecays has ${state.weightDecays.length} entries, expected ${this.params.length}`);
    }
    if (problems.length > 0) {
      throw new TensorMismatchError(
        `${where}: the state does not fit; nothing was loaded:\n  ${problems.join('\n  ')}`,
      );
    }
    this.setHyper(state.hyper);
    this.setLr(state.lr);
    this.stepCount = state.stepCount;
    state.params.forEach((entry, i) => {
      this.paramSteps[i] = entry.step;
      this.weightDecays[i] = state.weightDecays[i]!;
      const copies: Record<string, FloatArray | null> = {};
      for (const [k, b] of Object.entries(entry.buffers)) copies[k] = b ? b.slice() : null;
      this.setBuffers(i, copies);
    });
  }
}

/** A zeroed moment buffer matching a parameter's array type. */
export function zerosLike(p: FloatArray): FloatArray {
  return p instanceof Float64Array ? new Float64Array(p.length) : new Float32Array(p.length);
}
