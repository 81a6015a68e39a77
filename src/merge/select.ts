/**
 * Exact magnitude ranking without sorting a whole tensor (or model). Entries are ranked by |value|
 * (as f32) from the largest down, ties broken by position (earlier first), so "the top r" is always
 * exactly r entries. A `RankCut` answers "is this entry among the top r?" for entries visited in
 * position order; it is found by a two-pass radix selection over the f32 bit patterns (for
 * non-negative floats the bit order is the value order) — 2 x 65536 counters whatever the size —
 * or, for short rows, by sorting a copy.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The f32 bit pattern of a non-negative value. */
function bitsOf(a: number): number {
  f32[0] = a;
  return u32[0]!;
}

/**
 * Membership in the top r entries, for entries visited in position order: every entry above
 * `value`, plus the first `tiesLeft` entries equal to it (consumed as they are visited, so one cut
 * can span several tensors visited in a fixed order). The top 0 is value +inf with no ties; all
 * entries is value -inf.
 */
export class RankCut {
  constructor(
    /** Entries above this magnitude are in. */
    readonly value: number,
    /** How many entries equal to `value` are still to be taken. */
    public tiesLeft: number,
  ) {}

  /** The top 0 (nothing). */
  static none(): RankCut {
    return new RankCut(Number.POSITIVE_INFINITY, 0);
  }

  /** Every entry. */
  static all(): RankCut {
    return new RankCut(Number.NEGATIVE_INFINITY, 0);
  }

  /** The entries above `value` plus the first `ties` entries equal to it. */
  static at(value: number, ties: number): RankCut {
    return new RankCut(value, ties);
  }

  /** Whether the next entry, of magnitude `a` (an f32 value), is in the top r. */
  takes(a: number): boolean {
    if (a > this.value) return true;
    if (a === this.value && this.tiesLeft > 0) {
      this.tiesLeft--;
      return true;
    }
    return false;
  }
}

/**
 * Finds the cuts for several ranks over a stream of magnitudes fed twice: `addHigh` for every
 * value, `finishHigh()`, then (if `needsLow`) `addLow` for every value again, then `cuts()`.
 */
export class RadixRankSelector {
  private readonly high = new Float64Array(65536);
  private total = 0;
  private readonly lows = new Map<number, Float64Array>();
  private targets: { rank: number; bin: number; above: number }[] = [];

  /** Cuts at the given ranks (entry counts of the top bands). */
  constructor(private readonly ranks: readonly number[]) {}

  /** Pass 1: count one magnitude (a non-negative f32 value). */
  addHigh(a: number): void {
    this.high[bitsOf(a) >>> 16]!++;
    this.total++;
  }

  /** Pass 1 over many magnitudes at once, given as their f32 bit patterns. */
  addHighBits(bits: Uint32Array): void {
    const high = this.high;
    for (let j = 0; j < bits.length; j++) high[bits[j]! >>> 16]!++;
    this.total += bits.length;
  }

  /** End pass 1: locate each rank's bin. */
  finishHigh(): void {
    this.targets = this.ranks.map((rank) => {
      if (rank <= 0 || rank >= this.total) return { rank, bin: -1, above: 0 };
      let above = 0;
      for (let bin = 65535; bin >= 0; bin--) {
        const n = this.high[bin]!;
        if (above + n >= rank) {
          if (!this.lows.has(bin)) this.lows.set(bin, new Float64Array(65536));
          return { rank, bin, above };
        }
        above += n;
      }
      return { rank, bin: -1, above: 0 };
    });
  }

  /** Whether a second pass is needed (some rank strictly inside (0, total)). */
  get needsLow(): boolean {
    return this.lows.size > 0;
  }

  /** Pass 2: count one magnitude again, in the same order. */
  addLow(a: number): void {
    this.addLowPattern(bitsOf(a));
  }

  /** Pass 2 over many magnitudes at once, given as their f32 bit patterns. */
  addLowBits(bits: Uint32Array): void {
    const bins = [...this.lows.keys()];
    const lows = bins.map((b) => this.lows.get(b)!);
    const b0 = bins[0] ?? -1;
    const b1 = bins[1] ?? -1;
    const l0 = lows[0];
    const l1 = lows[1];
    if (bins.length > 2) {
      for (let j = 0; j < bits.length; j++) this.addLowPattern(bits[j]!);
      return;
    }
    for (let j = 0; j < bits.length; j++) {
      const x = bits[j]!;
      const h = x >>> 16;
      if (h === b0) l0![x & 0xffff]!++;
      else if (h === b1) l1![x & 0xffff]!++;
    }
  }

  private addLowPattern(bits: number): void {
    const low = this.lows.get(bits >>> 16);
    if (low) low[bits & 0xffff]!++;
  }

  /** The cuts, one per rank, in the order given. */
  cuts(): RankCut[] {
    return this.targets.map(({ rank, bin, above }) => {
      if (rank <= 0) return RankCut.none();
      if (bin < 0) return RankCut.all();
      const low = this.lows.get(bin)!;
      let greater = above;
      for (let l = 65535; l >= 0; l--) {
        const n = low[l]!;
        if (greater + n >= rank) {
          u32[0] = ((bin << 16) | l) >>> 0;
          return RankCut.at(f32[0]!, rank - greater);
        }
        greater += n;
      }
      return RankCut.all();
    });
  }
}

/** The cut at `rank` for the magnitudes of a short segment, given as an f32 array sorted ascending. */
export function cutFromSorted(sorted: Float32Array, rank: number): RankCut {
  const n = sorted.length;
  if (rank <= 0) return RankCut.none();
  if (rank >= n) return RankCut.all();
  const value = sorted[n - rank]!;
  let greater = 0;
  for (let i = n - 1; i >= 0 && sorted[i]! > value; i--) greater++;
  return RankCut.at(value, rank - greater);
}
