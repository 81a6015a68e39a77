/**
 * Parameter: a Tensor that a Module owns. Its buffer is a plain typed array (not pooled) and it is
 * never registered with a scope, so `scope()` and `backward()` never free it. `requiresGrad` is
 * the trainable flag: `freeze()` / `unfreeze()` toggle it. bf16 and i32 parameters are storage
 * only (no kernel produces their gradients), so they are created frozen and cannot be unfrozen.
 */
import {
  type AnyArray,
  checkShape,
  type DType,
  formatShape,
  type Rng,
  readElement,
  shapeSize,
  Tensor,
  toBf16Bits,
} from '../tensor/index.ts';

export interface ParameterOptions {
  /** Trainable (default: true for f32/f64, false otherwise; true is refused for bf16/i32). */
  requiresGrad?: boolean;
  /** Name used in error messages (modules report full dotted names themselves). */
  name?: string;
  /**
   * Internal (QuantizedParameter): `data` is a placeholder, the elements live in packed storage of
   * the subclass, so its length need not match the shape.
   */
  packedStorage?: boolean;
}

/** A typed array of `length` elements of `dtype` (fresh, zero-filled, not pooled). */
function allocArray(dtype: DType, length: number): AnyArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(length);
    case 'f64':
      return new Float64Array(length);
    case 'bf16':
      return new Uint16Array(length);
    case 'i32':
      return new Int32Array(length);
  }
}

function trainableDtype(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f64';
}

/** A module-owned, untracked tensor whose `requiresGrad` flag says whether it is trained. */
export class Parameter extends Tensor {
  /**
   * Wrap `data` (not copied; it must not come from the pool) as a parameter of `shape`.
   * Prefer the static constructors (`Parameter.zeros`, `Parameter.from`, ...).
   */
  constructor(data: AnyArray, shape: readonly number[], options: ParameterOptions = {}) {
    checkShape(shape, 'Parameter');
    if (!options.packedStorage && shapeSize(shape) !== data.length) {
      throw new RangeError(
        `Parameter: shape ${formatShape(shape)} holds ${shapeSize(shape)} elements but the array has ${data.length}`,
      );
    }
    super({ data, users: 0, pooled: false }, shape, { track: false, requiresGrad: false });
    this.name = options.name;
    const dtype = this.dtype;
    if (options.requiresGrad ?? trainableDtype(dtype)) this.unfreeze();
  }

  /** Zero-filled parameter. */
  static zeros(shape: readonly number[], dtype: DType = 'f32', options?: ParameterOptions): Parameter {
    checkShape(shape, 'Parameter.zeros');
    return new Parameter(allocArray(dtype, shapeSize(shape)), shape, options);
  }

  /** Parameter filled with `value`. */
  static full(
    shape: readonly number[],
    value: number,
    dtype: DType = 'f32',
    options?: ParameterOptions,
  ): Parameter {
    const p = Parameter.zeros(shape, dtype, options);
    // a fresh array is already zero (and untouched: a model built to be loaded costs no page
    // faults); other values are one fill of the stored bit pattern, not a per-element call
    if (value === 0 && !Object.is(value, -0)) return p;
    const d = p.data;
    if (d instanceof Uint16Array) d.fill(toBf16Bits(value));
    else if (d instanceof Int32Array) d.fill(Math.trunc(value));
    else d.fill(value);
    return p;
  }

  /** Uniform [low, high) samples drawn from `rng` (in element order). */
  static uniform(
    shape: readonly number[],
    low: number,
    high: number,
    rng: Rng,
    dtype: DType = 'f32',
    options?: ParameterOptions,
  ): Parameter {
    return Parameter.zeros(shape, dtype, options).fillWith(() => low + (high - low) * rng.uniform());
  }

  /** Normal(mean, std) samples drawn from `rng` (in element order). */
  static normal(
    shape: readonly number[],
    mean: number,
    std: number,
    rng: Rng,
    dtype: DType = 'f32',
    options?: ParameterOptions,
  ): Parameter {
    return Parameter.zeros(shape, dtype, options).fillWith(() => mean + std * rng.normal());
  }

  /** A parameter holding a copy of `t`'s data (same shape and dtype). */
  static from(t: Tensor, options?: ParameterOptions): Parameter {
    const p = Parameter.zeros(t.shape, t.dtype, options);
    (p.data as Float32Array).set(t.data as Float32Array);
    return p;
  }

  /**
   * Use `data` as this parameter's buffer from now on (not copied): same dtype and element count.
   * Zero-copy loading adopts views into a file mapping (private copy-on-write pages: a later
   * in-place write, e.g. a LoRA merge, changes this process's copy, never the file).
   */
  adoptData(data: AnyArray): this {
    this.replaceData(data);
    return this;
  }

  /** Whether the optimizer should update this parameter (same as `requiresGrad`). */
  get trainable(): boolean {
    return this.requiresGrad;
  }

  /** Stop training this parameter: `requiresGrad = false` and its gradient is released. */
  freeze(): this {
    this.requiresGrad = false;
    if (this.grad) {
      this.grad.release();
      this.grad = null;
    }
    return this;
  }

  /** Train this parameter (`requiresGrad = true`); refused for bf16/i32 storage-only parameters. */
  unfreeze(): this {
    if (!trainableDtype(this.dtype)) {
      throw new TypeError(
        `${this.describe()}: only f32/f64 parameters can be trained (${this.dtype} is storage only); convert it to f32 first`,
      );
    }
    this.requiresGrad = true;
    return this;
  }

  /** Overwrite every element with f(i) (bf16 rounded to nearest even, i32 truncated). */
  fillWith(f: (i: number) => number): this {
    const d = this.data;
    if (d instanceof Uint16Array) for (let i = 0; i < d.length; i++) d[i] = toBf16Bits(f(i));
    else if (d instanceof Int32Array) for (let i = 0; i < d.length; i++) d[i] = Math.trunc(f(i));
    else for (let i = 0; i < d.length; i++) d[i] = f(i);
    return this;
  }

  /**
   * Copy `src`'s values in (same element count). Dtypes must match unless `convert` is set, which
   * allows f32/f64/bf16 conversions (bf16 rounded to nearest even).
   */
  copyFrom(src: Tensor, convert = false): this {
    if (src.size !== this.size) {
      throw new RangeError(`${this.describe()}: cannot copy from ${src.describe()}: element counts differ`);
    }
    const dst = this.data;
    const from = src.data;
    if (src.dtype === this.dtype) {
      (dst as Float32Array).set(from as Float32Array);
      return this;
    }
    if (!convert || src.dtype === 'i32' || this.dtype === 'i32') {
      throw new TypeError(`${this.describe()}: cannot copy from ${src.describe()}: dtypes differ`);
    }
    if (dst instanceof Uint16Array) {
      for (let i = 0; i < dst.length; i++) dst[i] = toBf16Bits(readElement(from, i));
    } else {
      for (let i = 0; i < dst.length; i++) dst[i] = readElement(from, i);
    }
    return this;
  }
}
