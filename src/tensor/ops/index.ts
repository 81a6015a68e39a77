/** Every op, forward + backward. */

export * from './attention.ts';
export * from './convert.ts';
export * from './dropout.ts';
export * from './elementwise.ts';
export * from './embedding.ts';
export * from './loss.ts';
export * from './matmul.ts';
export * from './norm.ts';
export * from './projection.ts';
export * from './reduce.ts';
export * from './rope.ts';
export * from './shape.ts';
export * from './softmax.ts';
export * from './sparse-delta.ts';
export * from './swiglu.ts';
