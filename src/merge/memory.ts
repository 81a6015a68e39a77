/**
 * Bytes of tensor data a merge holds, counted where arrays are read, allocated and dropped, with
 * the high-water mark. This is the quantity the streaming design bounds by about
 * (inputs + 1) x the largest tensor; the process's RSS (bench) adds the runtime on top.
 */
export class MemoryTracker {
  private current = 0;
  private high = 0;

  /** Count `bytes` more as alive. */
  add(bytes: number): void {
    this.current += bytes;
    if (this.current > this.high) this.high = this.current;
  }

  /** Count `bytes` as freed. */
  remove(bytes: number): void {
    this.current -= bytes;
  }

  /** Bytes alive now. */
  get bytes(): number {
    return this.current;
  }

  /** The most bytes alive at once so far. */
  get peak(): number {
    return this.high;
  }
}
