/** Tensor creation: constants, copies of JS data, ranges and seeded random tensors. */
import type { DType } from './dtype.ts';
import { Rng } from './rng.ts';
import { checkShape, formatShape, shapeSize, Tensor, type TensorOptions } from './tensor.ts';

export interface CreateOptions extends TensorOptions {
  dtype?: DType;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** f32 -> bf16 bits, round to nearest even (NaN kept quiet). */
export function toBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function fillWith(t: Tensor, f: (i: number) => number): Tensor {
  const d = t.data;
  if (d instanceof Uint16Array) for (let i = 0; i < d.length; i++) d[i] = toBf16Bits(f(i));
  else if (d instanceof Int32Array) for (let i = 0; i < d.length; i++) d[i] = Math.trunc(f(i));
  else for (let i = 0; i < d.length; i++) d[i] = f(i);
  return t;
}

/** Uninitialised tensor (contents are whatever the pooled buffer held). */
export function empty(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return Tensor.alloc(shape, options.dtype ?? 'f32', false, options);
}

export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return Tensor.alloc(shape, options.dtype ?? 'f32', true, options);
}

export function full(shape: readonly number[], value: number, options: CreateOptions = {}): Tensor {
  const t = Tensor.alloc(shape, options.dtype ?? 'f32', false, options);
  if (t.dtype === 'bf16') (t.data as Uint16Array).fill(toBf16Bits(value));
  else t.data.fill(value);
  return t;
}

export function ones(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

type Nested = number | readonly Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

function flatten(data: Nested, out: number[]): void {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data as number);
}

/**
 * A tensor copied from JS data: a (nested) number array or a typed array, with an optional shape
 * (default: inferred from nesting, or 1-d).
 */
export function fromArray(
  data: Nested | ArrayLike<number>,
  shape?: readonly number[],
  options: CreateOptions = {},
): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (Array.isArray(data)) {
    const list: number[] = [];
    flatten(data as Nested, list);
    flat = list;
    inferred = inferShape(data as Nested);
  } else if (typeof data === 'number') {
    flat = [data];
    inferred = [];
  } else {
    flat = data as ArrayLike<number>;
    inferred = [flat.length];
  }
  const finalShape = shape ?? inferred;
  checkShape(finalShape, 'fromArray');
  if (shapeSize(finalShape) !== flat.length) {
    throw new RangeError(`fromArray: ${flat.length} values do not fill shape ${formatShape(finalShape)}`);
  }
  const dtype =
    options.dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Float64Array ? 'f64' : 'f32');
  const t = Tensor.alloc(finalShape, dtype, false, options);
  return fillWith(t, (i) => flat[i]!);
}

/** The scalar `value` as a 0-d tensor. */
export function scalar(value: number, options: CreateOptions = {}): Tensor {
  return full([], value, options);
}

/** [start, start+step, ...) up to (excluding) end; i32 by default. */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0) throw new RangeError('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = Tensor.alloc([n], options.dtype ?? 'i32', false, options);
  return fillWith(t, (i) => start + i * step);
}

export interface RandomOptions extends CreateOptions {
  /** Seed (a fresh generator) or a generator to draw from. */
  seed?: number;
  rng?: Rng;
}

function rngOf(options: RandomOptions, fn: string): Rng {
  if (options.rng) return options.rng;
  if (options.seed === undefined)
    throw new Error(`${fn}: pass a seed or an rng (Attune never draws unseeded randomness)`);
  return new Rng(options.seed);
}

/** Normal(mean, std) samples. */
export function randn(
  shape: readonly number[],
  options: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  const rng = rngOf(options, 'randn');
  const mean = options.mean ?? 0;
  const std = options.std ?? 1;
  return fillWith(
    Tensor.alloc(shape, options.dtype ?? 'f32', false, options),
    () => mean + std * rng.normal(),
  );
}

/** Uniform [low, high) samples. */
export function rand(
  shape: readonly number[],
  options: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  const rng = rngOf(options, 'rand');
  const low = options.low ?? 0;
  const high = options.high ?? 1;
  return fillWith(
    Tensor.alloc(shape, options.dtype ?? 'f32', false, options),
    () => low + (high - low) * rng.uniform(),
  );
}

/** Uniform integers in [low, high); i32 by default. */
export function randint(
  shape: readonly number[],
  low: number,
  high: number,
  options: RandomOptions = {},
): Tensor {
  if (!(high > low)) throw new RangeError(`randint: high (${high}) must exceed low (${low})`);
  const rng = rngOf(options, 'randint');
  return fillWith(
    Tensor.alloc(shape, options.dtype ?? 'i32', false, options),
    () => low + rng.int(high - low),
  );
}
