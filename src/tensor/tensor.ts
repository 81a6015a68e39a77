/**
 * Tensor: a contiguous row-major buffer (from the pool), a shape and a dtype. There are no strided
 * views: `view(shape)` shares the buffer under a new shape; every other layout change is an op that
 * makes a new tensor. Ownership is reference counted: the creator (or its scope) holds one reference,
 * an autograd node holds one per saved tensor; the buffer returns to the pool when none remain.
 */
import type { FloatArray } from '../backend/kernels.ts';
import type { GradNode } from './autograd.ts';
import { type AnyArray, type ArrayForDType, type DType, dtypeOfArray } from './dtype.ts';
import { pool } from './pool.ts';
import { type Releasable, track } from './scope.ts';

/** A buffer shared by a tensor and its views. */
interface Storage {
  data: AnyArray;
  /** Tensors (views) using this buffer. */
  users: number;
  /** Whether the buffer came from the pool (external buffers, e.g. file data, are not returned). */
  pooled: boolean;
}

/** Product of a shape's dimensions. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throws unless every dimension is a non-negative integer. */
export function checkShape(shape: readonly number[], where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${where}: invalid shape [${shape.join(',')}]: dimensions must be non-negative integers`,
      );
    }
  }
}

/** Row-major strides (in elements) of a contiguous tensor of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export interface TensorOptions {
  /** Register with the innermost scope (default true). Parameters and grads are untracked. */
  track?: boolean;
  requiresGrad?: boolean;
}

export class Tensor implements Releasable {
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Gradient accumulated by `backward()` (leaf tensors that require grad). */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor, while the tape holds it. */
  node: GradNode | null = null;
  /** Whether gradients flow to this tensor. */
  requiresGrad: boolean;
  /** Optional name, used in error messages (parameters carry their Hub name). */
  name: string | undefined;

  private storage: Storage | null;
  private owners = 1;

  /** Wrap `storage` (internal: use the creation functions). */
  constructor(storage: Storage, shape: readonly number[], options: TensorOptions = {}) {
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    this.dtype = dtypeOfArray(storage.data);
    this.requiresGrad = options.requiresGrad ?? false;
    storage.users++;
    if (options.track !== false) track(this);
  }

  /** A tensor over a new pooled buffer (zero-filled when `zero`). */
  static alloc(shape: readonly number[], dtype: DType, zero: boolean, options?: TensorOptions): Tensor {
    checkShape(shape, 'Tensor.alloc');
    const data = pool.acquire(dtype, shapeSize(shape), zero);
    return new Tensor({ data, users: 0, pooled: true }, shape, options);
  }

  /** A tensor over an existing typed array (not pooled, not copied). */
  static wrap(data: AnyArray, shape: readonly number[], options?: TensorOptions): Tensor {
    checkShape(shape, 'Tensor.wrap');
    if (shapeSize(shape) !== data.length) {
      throw new RangeError(
        `Tensor.wrap: shape ${formatShape(shape)} holds ${shapeSize(shape)} elements but the array has ${data.length}`,
      );
    }
    return new Tensor({ data, users: 0, pooled: false }, shape, options);
  }

  /** The underlying typed array (throws if the tensor was released). */
  get data(): AnyArray {
    if (!this.storage) throw new Error(this.releasedMessage());
    return this.storage.data;
  }

  /** The data as a float array (f32 or f64); throws for bf16/i32. */
  floatData(): FloatArray {
    const d = this.data;
    if (d instanceof Float32Array || d instanceof Float64Array) return d;
    throw new TypeError(`${this.describe()}: expected a float tensor (f32 or f64), found ${this.dtype}`);
  }

  /** The data typed for `dtype`; throws when the tensor is another dtype. */
  dataAs<D extends DType>(dtype: D): ArrayForDType[D] {
    if (this.dtype !== dtype)
      throw new TypeError(`${this.describe()}: expected ${dtype}, found ${this.dtype}`);
    return this.data as ArrayForDType[D];
  }

  get rank(): number {
    return this.shape.length;
  }

  get isReleased(): boolean {
    return this.storage === null;
  }

  /** Short description for error messages. */
  describe(): string {
    return `${this.name ? `tensor '${this.name}' ` : 'tensor '}${formatShape(this.shape)} ${this.dtype}`;
  }

  private releasedMessage(): string {
    return `${this.describe()} was released (by a scope or backward()); keep() it or return it from the scope to use it later`;
  }

  /** Take one more owner reference (returns this). */
  retain(): this {
    if (!this.storage) throw new Error(this.releasedMessage());
    this.owners++;
    return this;
  }

  /** Drop one owner reference; the buffer returns to the pool when no owner and no view remain. */
  release(): void {
    if (!this.storage) return;
    if (--this.owners > 0) return;
    const storage = this.storage;
    this.storage = null;
    if (--storage.users === 0 && storage.pooled) pool.release(storage.data);
  }

  /**
   * Point this tensor (and its views) at `data` instead of its current, unpooled buffer: same
   * dtype and element count (internal: `Parameter.adoptData` for zero-copy loading).
   */
  protected replaceData(data: AnyArray): void {
    const storage = this.storage;
    if (!storage) throw new Error(this.releasedMessage());
    if (storage.pooled) throw new Error(`${this.describe()}: a pooled buffer cannot be replaced`);
    if (dtypeOfArray(data) !== this.dtype || data.length !== this.size) {
      throw new RangeError(
        `${this.describe()}: cannot adopt a ${dtypeOfArray(data)} array of ${data.length} elements`,
      );
    }
    storage.data = data;
  }

  /** Release this tensor now (user-facing alias of `release`). */
  dispose(): void {
    this.release();
  }

  /** Same buffer, new shape of equal size; no autograd (use the `reshape` op for that). */
  view(shape: readonly number[], options?: TensorOptions): Tensor {
    if (!this.storage) throw new Error(this.releasedMessage());
    checkShape(shape, 'view');
    if (shapeSize(shape) !== this.size) {
      throw new RangeError(
        `view: cannot view ${formatShape(this.shape)} (${this.size} elements) as ${formatShape(shape)}`,
      );
    }
    return new Tensor(this.storage, shape, options);
  }

  /** A tensor sharing this buffer that is cut off from autograd. */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** The single value of a one-element tensor. */
  item(): number {
    if (this.size !== 1)
      throw new RangeError(`item(): ${this.describe()} has ${this.size} elements, expected 1`);
    return readElement(this.data, 0);
  }

  /** Values as a plain number array (bf16 widened). */
  toArray(): number[] {
    const d = this.data;
    const out = new Array<number>(d.length);
    for (let i = 0; i < d.length; i++) out[i] = readElement(d, i);
    return out;
  }

  /** Values as nested arrays following the shape. */
  toNested(): unknown {
    const flat = this.toArray();
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.shape.length) return flat[offset];
      const stride = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim]! }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(${formatShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

const bf16Scratch = new Uint32Array(1);
const bf16ScratchF = new Float32Array(bf16Scratch.buffer);

/** Read element i as a number (bf16 widened to f32). */
export function readElement(d: AnyArray, i: number): number {
  if (d instanceof Uint16Array) {
    bf16Scratch[0] = d[i]! << 16;
    return bf16ScratchF[0]!;
  }
  return d[i]!;
}
