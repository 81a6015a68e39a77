/** nn/: Module, Parameter and the basic layers models are built from. */
export * from './checkpoint.ts';
export * from './conv1d.ts';
export * from './dropout.ts';
export * from './embedding.ts';
export * from './init.ts';
export * from './linear.ts';
export * from './module.ts';
export * from './norm.ts';
export * from './parameter.ts';
export * from './precision.ts';
export * from './quantized.ts';
