/** Elementwise ops: NumPy-broadcast binary arithmetic, unary functions, where / maskedFill. */
import type { BinaryOp, FloatArray, UnaryOp } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { Tensor } from '../tensor.ts';
import {
  broadcastShapes,
  broadcastStrides,
  emptyLike,
  floatOf,
  kernelsOf,
  sameDtype,
  sumToShape,
} from './util.ts';

function binaryForward(op: BinaryOp, a: Tensor, b: Tensor, name: string): Tensor {
  sameDtype(a, b, name);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const out = emptyLike(a, shape);
  kernelsOf(a).binary(
    op,
    floatOf(a, name),
    broadcastStrides(a.shape, shape),
    floatOf(b, name),
    broadcastStrides(b.shape, shape),
    out.data as FloatArray,
    shape,
  );
  return out;
}

/** a + b (broadcasting). */
export function add(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('add', a, b, 'add');
  if (needsGrad(a, b)) {
    record('add', [a, b], [out], [], ([g]) => [sumToShape(g!, a.shape), sumToShape(g!, b.shape)]);
  }
  return out;
}

/** a - b (broadcasting). */
export function sub(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('sub', a, b, 'sub');
  if (needsGrad(a, b)) {
    record('sub', [a, b], [out], [], ([g]) => [
      sumToShape(g!, a.shape),
      b.requiresGrad ? sumToShape(neg(g!), b.shape) : null,
    ]);
  }
  return out;
}

/** a * b (broadcasting). */
export function mul(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('mul', a, b, 'mul');
  if (needsGrad(a, b)) {
    record('mul', [a, b], [out], [...(a.requiresGrad ? [b] : []), ...(b.requiresGrad ? [a] : [])], ([g]) => [
      a.requiresGrad ? sumToShape(binaryForward('mul', g!, b, 'mul'), a.shape) : null,
      b.requiresGrad ? sumToShape(binaryForward('mul', g!, a, 'mul'), b.shape) : null,
    ]);
  }
  return out;
}

/** a / b (broadcasting). */
export function div(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('div', a, b, 'div');
  if (needsGrad(a, b)) {
    record('div', [a, b], [out], [b, out], ([g]) => [
      a.requiresGrad ? sumToShape(binaryForward('div', g!, b, 'div'), a.shape) : null,
      // d(a/b)/db = -out / b
      b.requiresGrad
        ? sumToShape(neg(binaryForward('mul', g!, binaryForward('div', out, b, 'div'), 'div')), b.shape)
        : null,
    ]);
  }
  return out;
}

/** Elementwise maximum (gradient to a where a >= b). */
export function maximum(a: Tensor, b: Tensor): Tensor {
  const out = binaryForward('max', a, b, 'maximum');
  if (needsGrad(a, b)) {
    record('maximum', [a, b], [out], [a, b], ([g]) => {
      const aWins = binaryForward('gt', b, a, 'maximum'); // 1 where b > a
      const gb = binaryForward('mul', g!, aWins, 'maximum');
      const ga = binaryForward('sub', g!, gb, 'maximum');
      return [sumToShape(ga, a.shape), sumToShape(gb, b.shape)];
    });
  }
  return out;
}

/** The tensors a unary op's derivative reads (kernels get the others' arrays but ignore them). */
function savedFor(op: UnaryOp, x: Tensor, out: Tensor): Tensor[] {
  switch (op) {
    case 'neg':
    case 'add_scalar':
    case 'mul_scalar':
      return [];
    case 'exp':
    case 'sqrt':
    case 'rsqrt':
    case 'tanh':
    case 'sigmoid':
      return [out];
    default:
      return [x];
  }
}

function unaryOp(op: UnaryOp, x: Tensor, param = 0): Tensor {
  const out = emptyLike(x);
  const k = kernelsOf(x);
  k.unary(op, floatOf(x, op), out.data as FloatArray, x.size, param);
  if (needsGrad(x)) {
    record(op, [x], [out], savedFor(op, x, out), ([g]) => {
      const gx = emptyLike(x);
      // an operand the derivative does not read may already be freed: pass g's array in its place
      k.unaryBackward(
        op,
        (x.isReleased ? g!.data : x.data) as FloatArray,
        (out.isReleased ? g!.data : out.data) as FloatArray,
        g!.data as FloatArray,
        gx.data as FloatArray,
        x.size,
        param,
      );
      return [gx];
    });
  }
  return out;
}

export const neg = (x: Tensor): Tensor => unaryOp('neg', x);
export const exp = (x: Tensor): Tensor => unaryOp('exp', x);
export const log = (x: Tensor): Tensor => unaryOp('log', x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unaryOp('rsqrt', x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', x);
export const relu = (x: Tensor): Tensor => unaryOp('relu', x);
export const silu = (x: Tensor): Tensor => unaryOp('silu', x);
export const softplus = (x: Tensor): Tensor => unaryOp('softplus', x);
export const square = (x: Tensor): Tensor => unaryOp('square', x);
/** GELU, tanh approximation ('tanh', GPT-2's gelu_new) or exact ('erf'). */
export const gelu = (x: Tensor, approximate: 'tanh' | 'erf' = 'erf'): Tensor =>
  unaryOp(approximate === 'tanh' ? 'gelu_tanh' : 'gelu_erf', x);
/** x ** exponent (scalar exponent). */
export const pow = (x: Tensor, exponent: number): Tensor => unaryOp('pow', x, exponent);
/** x + value (scalar). */
export const addScalar = (x: Tensor, value: number): Tensor => unaryOp('add_scalar', x, value);
/** x * value (scalar). */
export const mulScalar = (x: Tensor, value: number): Tensor => unaryOp('mul_scalar', x, value);

/**
 * cond ? a : b elementwise with broadcasting; cond is any numeric tensor (non-zero = true) and
 * carries no gradient.
 */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  sameDtype(a, b, 'where');
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  const out = emptyLike(a, shape);
  const k = kernelsOf(a);
  const condData = cond.data;
  if (condData instanceof Uint16Array)
    throw new TypeError(`where: condition ${cond.describe()} must not be bf16`);
  k.where(
    condData,
    broadcastStrides(cond.shape, shape),
    floatOf(a, 'where'),
    broadcastStrides(a.shape, shape),
    floatOf(b, 'where'),
    broadcastStrides(b.shape, shape),
    out.data as FloatArray,
    shape,
  );
  if (needsGrad(a, b)) {
    record('where', [a, b], [out], [cond], ([g]) => {
      const zero = Tensor.alloc([1], g!.dtype, true);
      const pick = (first: Tensor, second: Tensor): Tensor => {
        const r = emptyLike(g!, shape);
        k.where(
          condData,
          broadcastStrides(cond.shape, shape),
          first.data as FloatArray,
          broadcastStrides(first.shape, shape),
          second.data as FloatArray,
          broadcastStrides(second.shape, shape),
          r.data as FloatArray,
          shape,
        );
        return r;
      };
      return [
        a.requiresGrad ? sumToShape(pick(g!, zero), a.shape) : null,
        b.requiresGrad ? sumToShape(pick(zero, g!), b.shape) : null,
      ];
    });
  }
  return out;
}

/** x with `value` wherever mask is non-zero (mask broadcasts to x). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  const fill = Tensor.alloc([1], x.dtype, false);
  (fill.data as FloatArray)[0] = value;
  return where(mask, fill, x);
}
