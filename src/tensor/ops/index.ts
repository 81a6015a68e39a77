/** Every op, forward + backward. */
export * from './elementwise.ts';
export * from './matmul.ts';
export * from './reduce.ts';
export * from './shape.ts';
