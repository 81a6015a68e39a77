/**
 * Storage half of `precision: bf16-mixed`: frozen weight matrices kept in bf16. The compute half is
 * `Module.setComputePrecision('bf16')` (Linear / Conv1D / tuner layers run their GEMMs with bf16
 * inputs and f32 accumulation).
 */
import { bf16ArrayOf } from '../tensor/index.ts';
import type { Module } from './module.ts';
import { Parameter } from './parameter.ts';

/** What `storeFrozenInBf16` converted. */
export interface Bf16StorageResult {
  /** Names of the converted parameters (a tied one under its first name). */
  converted: string[];
  /** Bytes freed: 2 per converted element (the f32 copy is dropped). */
  bytesSaved: number;
}

/**
 * Replace every frozen f32 matrix parameter (rank >= 2, `requiresGrad` false) of the tree by a bf16
 * copy (round to nearest even), made once, under every name it is registered (tied weights stay
 * one parameter) and in every property that held it; the f32 copy is dropped. Trainable
 * parameters, vectors (norm weights, biases) and bf16 / f64 parameters are left alone. With `only`,
 * just the parameters in that set are candidates (e.g. the base model's, not an adapter's).
 */
export function storeFrozenInBf16(root: Module, only?: ReadonlySet<Parameter>): Bf16StorageResult {
  const replaced = new Map<Parameter, Parameter>();
  const converted: string[] = [];
  let bytesSaved = 0;
  for (const [name, t] of root.stateDict()) {
    if (!(t instanceof Parameter)) continue;
    if (t.dtype !== 'f32' || t.requiresGrad || t.rank < 2) continue;
    if (only && !only.has(t)) continue;
    let q = replaced.get(t);
    if (!q) {
      q = new Parameter(bf16ArrayOf(t), t.shape, { requiresGrad: false, name: t.name });
      replaced.set(t, q);
      converted.push(name);
      bytesSaved += 2 * t.size;
    }
    root.setParameter(name, q);
  }
  return { converted, bytesSaved };
}
