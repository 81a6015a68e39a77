/** The inputs of one output tensor, each read once and counted by a MemoryTracker. */
import type { MemoryTracker } from './memory.ts';

const SCRATCH = '\0scratch';

/** Something one tensor can be read from (a model source). */
export interface TensorSource {
  ref: { key: string };
  read(name: string, tracker?: MemoryTracker): Float32Array;
}

/** Reads the distinct inputs of one tensor once each, counting their bytes. */
export class TensorInputs {
  private readonly arrays = new Map<string, Float32Array>();

  constructor(private readonly tracker: MemoryTracker) {}

  /** `name` from `source` as f32 (the same array on a second call). */
  get(source: TensorSource, name: string): Float32Array {
    let values = this.arrays.get(source.ref.key);
    if (!values) {
      values = source.read(name, this.tracker);
      this.arrays.set(source.ref.key, values);
    }
    return values;
  }

  /** A scratch f32 array of `n` entries (one per tensor, counted like an input). */
  scratch(n: number): Float32Array {
    let values = this.arrays.get(SCRATCH);
    if (!values || values.length !== n) {
      if (values) this.tracker.remove(values.byteLength);
      values = new Float32Array(n);
      this.tracker.add(values.byteLength);
      this.arrays.set(SCRATCH, values);
    }
    return values;
  }

  /** Forget every array read (their bytes leave the tracker). */
  releaseAll(): void {
    for (const values of this.arrays.values()) this.tracker.remove(values.byteLength);
    this.arrays.clear();
  }
}
