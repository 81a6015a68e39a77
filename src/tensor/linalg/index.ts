/**
 * tensor/linalg: dense f64 linear algebra on row-major Float64Arrays with explicit dimensions —
 * Householder QR, symmetric eigendecomposition, full SVD and randomized truncated SVD — plus
 * conversions from and to 2-D Tensors. Used by analysis (intruder dimensions), SVD-based LoRA
 * initialisations and merge methods.
 */
export * from './eigen.ts';
export * from './matrix.ts';
export * from './partial.ts';
export * from './qr.ts';
export * from './randomized.ts';
export * from './svd.ts';
