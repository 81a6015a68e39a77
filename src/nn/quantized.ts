/**
 * Quantised frozen base weights (`model_dtype: int8 | nf4`, QLoRA-style storage): the weight of a
 * Linear / Conv1D (and of the tuner layer wrapping one) becomes a `QuantizedParameter`, a frozen
 * parameter of the same shape and name whose elements live block-quantised in a `QuantizedMatrix`
 * (tensor/quant.ts). `matmul` multiplies by it with `qgemm`, dequantising a tile at a time, so
 * Linear.forward, LoRA's base path and their input gradients run unchanged. It has no element
 * array: code that reads a weight's values (a merge, PiSSA's SVD, DoRA's norm) gets a one-line
 * error naming the parameter instead of wrong numbers.
 */
import { type AnyArray, QUANT_STORAGE, type QuantFormat, QuantizedMatrix, Tensor } from '../tensor/index.ts';
import { Conv1D } from './conv1d.ts';
import { Linear } from './linear.ts';
import type { Module } from './module.ts';
import { Parameter } from './parameter.ts';

/** A frozen matrix parameter stored block-quantised (int8 / NF4); see the file comment. */
export class QuantizedParameter extends Parameter {
  readonly [QUANT_STORAGE]: QuantizedMatrix;

  /** A parameter [q.rows, q.cols] standing for `q` (frozen; it cannot be trained). */
  constructor(q: QuantizedMatrix, name?: string) {
    super(new Int32Array(0), [q.rows, q.cols], { requiresGrad: false, name, packedStorage: true });
    this[QUANT_STORAGE] = q;
  }

  /** The quantised matrix. */
  get quantized(): QuantizedMatrix {
    return this[QUANT_STORAGE];
  }

  /** Its storage format. */
  get format(): QuantFormat {
    return this[QUANT_STORAGE].format;
  }

  /** Refused: a quantised weight has no element array (matmul multiplies it; `dequantize()` copies it). */
  override get data(): AnyArray {
    throw new TypeError(
      `${this.describe()}: a quantised (model_dtype ${this.format}) weight has no element array; this operation needs an f32 or bf16 base (load the model with model_dtype f32 or bf16)`,
    );
  }

  override describe(): string {
    return `${this.name ? `tensor '${this.name}' ` : 'tensor '}[${this.shape.join(', ')}] ${this.format}`;
  }

  override toString(): string {
    return `QuantizedParameter([${this.shape.join(', ')}], ${this.format})`;
  }

  override unfreeze(): this {
    throw new TypeError(`${this.describe()}: a quantised weight is frozen storage and cannot be trained`);
  }

  /** The dequantised values as a fresh f32 tensor [rows, cols] (untracked; the caller disposes it). */
  dequantize(): Tensor {
    const q = this[QUANT_STORAGE];
    return Tensor.wrap(q.dequantizeRows(), [q.rows, q.cols], { track: false });
  }
}

/** What `quantizeFrozenBase` converted. */
export interface QuantizeResult {
  /** Names of the converted weights. */
  converted: string[];
  /** Bytes of the converted matrices before (f32 / bf16) and after (codes + scales). */
  bytesBefore: number;
  bytesAfter: number;
}

/** A model that can say which matrix its LM head applies (CausalLM does). */
interface WithLmHead {
  lmHeadWeight?: () => Tensor;
}

/** Whether `m` is a layer whose `weight` is a GEMM operand matmul can take quantised. */
function isGemmLayer(m: Module): boolean {
  if (m instanceof Linear || m instanceof Conv1D) return true;
  // a tuner layer wrapping one (LoraLinear registers the base's own weight)
  const base = (m as { base?: unknown }).base;
  return (
    (m as { isTunerLayer?: boolean }).isTunerLayer === true &&
    (base instanceof Linear || base instanceof Conv1D)
  );
}

/**
 * Replace the weight of every Linear / Conv1D (or tuner layer over one) of the tree that is frozen
 * f32 / bf16 by a QuantizedParameter in `format`, once per parameter, under every name it is
 * registered and in the wrapped base layer; the old array is dropped. The LM head (the matrix
 * `lmHeadWeight()` returns: tied embeddings or `lm_head`), embeddings, norms and biases stay as
 * they are. With `only`, just the parameters in that set are candidates.
 */
export function quantizeFrozenBase(
  root: Module,
  format: QuantFormat,
  only?: ReadonlySet<Parameter>,
): QuantizeResult {
  const head = (root as WithLmHead).lmHeadWeight?.() ?? null;
  const replaced = new Map<Parameter, QuantizedParameter>();
  const result: QuantizeResult = { converted: [], bytesBefore: 0, bytesAfter: 0 };
  for (const [name, t] of root.stateDict()) {
    if (!(t instanceof Parameter) || !quantizable(root, name, t, head)) continue;
    if (only && !only.has(t)) continue;
    let q = replaced.get(t);
    if (!q) {
      q = new QuantizedParameter(
        QuantizedMatrix.from(t, format, `model_dtype ${format}: ${name}`),
        t.name ?? name,
      );
      replaced.set(t, q);
      result.converted.push(name);
      result.bytesBefore += t.data.byteLength;
      result.bytesAfter += q.quantized.bytes;
    }
    root.setParameter(name, q);
  }
  // a tuner layer keeps the layer it replaced (unregistered, for unload): point it at the same storage
  for (const m of root.modules()) {
    const base = (m as { base?: unknown }).base;
    if (!(base instanceof Linear || base instanceof Conv1D)) continue;
    const q = replaced.get(base.weight);
    if (q) base.setParameter('weight', q);
  }
  return result;
}

/** Whether the parameter `t` registered as `name` is a frozen f32 / bf16 GEMM-layer weight other than the LM head. */
function quantizable(root: Module, name: string, t: Parameter, head: Tensor | null): boolean {
  if (t instanceof QuantizedParameter) return false;
  if ((t.dtype !== 'f32' && t.dtype !== 'bf16') || t.requiresGrad || t.rank !== 2 || t === head) return false;
  const dot = name.lastIndexOf('.');
  return (
    name.slice(dot + 1) === 'weight' && isGemmLayer(root.getSubmodule(dot < 0 ? '' : name.slice(0, dot)))
  );
}

/**
 * Quantise the one parameter registered as `name` when `quantizeFrozenBase` would (a frozen
 * Linear / Conv1D weight, not the LM head); returns whether it did. For streaming: a model being
 * initialised or loaded quantises each matrix as soon as it is filled, so its f32 / bf16 copies
 * are never all resident together.
 */
export function quantizeParameterAt(root: Module, name: string, format: QuantFormat): boolean {
  const t = root.getParameter(name);
  const head = (root as WithLmHead).lmHeadWeight?.() ?? null;
  if (!quantizable(root, name, t, head)) return false;
  root.setParameter(
    name,
    new QuantizedParameter(QuantizedMatrix.from(t, format, `model_dtype ${format}: ${name}`), t.name ?? name),
  );
  return true;
}

/** Whether any parameter of the tree is quantised. */
export function hasQuantizedWeights(root: Module): boolean {
  return root.parameters().some((p) => p instanceof QuantizedParameter);
}
