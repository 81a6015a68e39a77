/** The plain-TypeScript backend: the correctness oracle, runs anywhere (also in a browser). */
import type { Kernels } from '../kernels.ts';
import { attention, attentionBackward, attentionBf16, attentionBf16Backward } from './attention.ts';
import { binary, copyStrided, reduce, sgemm, sumSquares, unary, unaryBackward, where } from './basic.ts';
import { gemmBf16 } from './gemm-bf16.ts';
import {
  crossEntropy,
  crossEntropyBackward,
  linearCrossEntropy,
  linearCrossEntropyBackward,
  linearCrossEntropyBf16,
  linearCrossEntropyBf16Backward,
} from './lce.ts';
import {
  adamw,
  bf16ToF32,
  dropout,
  dropoutBackward,
  f32ToBf16,
  fwht,
  gatherRows,
  rowPairDots,
  scatterAddRows,
  swiglu,
  swigluBackward,
} from './misc.ts';
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from './norm.ts';
import { dequantize, qgemm, quantize } from './quant.ts';
import { rope } from './rope.ts';
import { logSoftmax, logSoftmaxBackward, softmax, softmaxBackward } from './softmax.ts';

export const jsKernels: Kernels = {
  name: 'js',
  threads: () => 1,
  sgemm,
  gemmBf16,
  unary,
  unaryBackward,
  binary,
  where,
  copyStrided,
  reduce,
  softmax,
  softmaxBackward,
  logSoftmax,
  logSoftmaxBackward,
  rmsNorm,
  rmsNormBackward,
  layerNorm,
  layerNormBackward,
  rope,
  attention,
  attentionBackward,
  attentionBf16,
  attentionBf16Backward,
  swiglu,
  swigluBackward,
  gatherRows,
  scatterAddRows,
  rowPairDots,
  fwht,
  linearCrossEntropy,
  linearCrossEntropyBackward,
  linearCrossEntropyBf16,
  linearCrossEntropyBf16Backward,
  crossEntropy,
  crossEntropyBackward,
  dropout,
  dropoutBackward,
  adamw,
  f32ToBf16,
  bf16ToF32,
  sumSquares,
  quantize,
  dequantize,
  qgemm,
};
