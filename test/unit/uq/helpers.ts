/** Shared helpers of the uq tests. */
import assert from 'node:assert/strict';
import type { MetricResult } from '../../../src/uq/index.ts';

/** Assert that `result` is defined and within `tolerance` of `expected`. */
export function assertValue(result: MetricResult, expected: number, tolerance = 1e-12): void {
  assert.notEqual(result.value, null, `expected ${expected}, got null (${result.reason})`);
  assert.ok(
    Math.abs(result.value! - expected) <= tolerance,
    `expected ${expected}, got ${result.value} (tolerance ${tolerance})`,
  );
}

/** Assert that `result` is undefined (null) with a reason matching `reason`. */
export function assertUndefined(result: MetricResult, reason: RegExp): void {
  assert.equal(result.value, null, `expected null, got ${result.value}`);
  assert.match(result.reason!, reason);
}

/** Assert |actual - expected| <= tolerance. */
export function assertClose(actual: number, expected: number, tolerance = 1e-12, what = 'value'): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: expected ${expected}, got ${actual}`);
}

/**
 * Every order of `items` that sorts `scores` ascending with ties broken every possible way (the
 * product of the permutations of each tie group). For brute-force checks of tie averaging.
 */
export function tieOrders(scores: readonly number[]): number[][] {
  const distinct = [...new Set(scores)].sort((a, b) => a - b);
  const groups = distinct.map((s) => scores.flatMap((v, i) => (v === s ? [i] : [])));
  const permutations = (xs: number[]): number[][] =>
    xs.length <= 1
      ? [xs]
      : xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map((p) => [x, ...p]));
  let orders: number[][] = [[]];
  for (const group of groups) {
    const perms = permutations(group);
    orders = orders.flatMap((prefix) => perms.map((p) => [...prefix, ...p]));
  }
  return orders;
}
