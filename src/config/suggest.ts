/** "Did you mean ...?" for mistyped flags, commands, config keys and method names (one implementation for all). */

/** Levenshtein edit distance between two strings. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate closest to `word`, or null when none is plausibly what was meant: the only
 * candidate that `word` is a prefix of; else, for words of 3+ characters, the longest candidate
 * that is a prefix of `word`, else the one with the smallest edit distance if that distance is at
 * most 2 or a third of the word's length.
 */
export function closest(word: string, candidates: readonly string[]): string | null {
  if (word.length === 0) return null;
  const byPrefix = candidates.filter((c) => c.startsWith(word));
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (word.length < 3) return null;
  const extended = candidates.filter((c) => c.length >= 3 && word.startsWith(c));
  if (extended.length > 0) return extended.reduce((a, b) => (b.length > a.length ? b : a));
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}
