import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalCdf } from '../../../src/tensor/special.ts';
import { buildPairs, listSelect, pairConfidence, upoSelect } from '../../../src/train/rounds/pairs.ts';

describe('on-policy pairs from graded samples', () => {
  it('per prompt: best vs worst reward, first of ties; all-tied prompts give no pair', () => {
    const pairs = buildPairs([
      { prompt: 'A', response: ' x', reward: 0.2 },
      { prompt: 'B', response: ' p', reward: 1 },
      { prompt: 'A', response: ' y', reward: 0.9 },
      { prompt: 'A', response: ' z', reward: 0.9 },
      { prompt: 'A', response: ' w', reward: 0.1 },
      { prompt: 'B', response: ' q', reward: 1 },
      { prompt: 'C', response: ' r', reward: 0 },
      { prompt: 'C', response: ' s', reward: 1 },
    ]);
    assert.deepEqual(pairs, [
      { prompt: 'A', chosen: ' y', rejected: ' w', chosen_reward: 0.9, rejected_reward: 0.1 },
      { prompt: 'C', chosen: ' s', rejected: ' r', chosen_reward: 1, rejected_reward: 0 },
    ]);
  });
  it('minGap drops near ties; the same text never pairs with itself', () => {
    const s = [
      { prompt: 'A', response: ' x', reward: 0.5 },
      { prompt: 'A', response: ' y', reward: 0.6 },
      { prompt: 'B', response: ' t', reward: 0 },
      { prompt: 'B', response: ' t', reward: 1 },
    ];
    assert.equal(buildPairs(s, { minGap: 0.2 }).length, 0);
    assert.deepEqual(
      buildPairs(s).map((p) => p.prompt),
      ['A'],
    );
  });
  it('a non-finite reward is an error naming the sample', () => {
    assert.throws(
      () => buildPairs([{ prompt: 'A', response: ' x', reward: Number.NaN }]),
      /sample 0 .*reward: expected a finite number, found NaN/,
    );
  });
});

describe('UPO confidence and selection', () => {
  it('Phi(mean / std) of the per-pass margins, by hand', () => {
    // margins 1, 3: mean 2, population std 1 -> Phi(2) = 0.97725
    assert.ok(Math.abs(pairConfidence([1, 3]) - 0.9772499) < 1e-6);
    // margins -1, 1: mean 0 -> 0.5; all agree -> 1 / 0
    assert.ok(Math.abs(pairConfidence([-1, 1]) - 0.5) < 1.5e-7); // within erfc's approximation error
    assert.equal(pairConfidence([0.3, 0.3]), 1);
    assert.equal(pairConfidence([-0.3, -0.3]), 0);
    assert.ok(Math.abs(normalCdf(-1) - 0.1586553) < 1e-6);
    assert.throws(() => pairConfidence([]), /at least one MC-dropout pass/);
  });
  it('filter keeps pairs at or above the threshold; weight keeps all, weighted', () => {
    const pairs = ['a', 'b', 'c', 'd'];
    const conf = [0.95, 0.5, 0.8, 0.79];
    assert.deepEqual(
      upoSelect(pairs, conf, { mode: 'filter', threshold: 0.8 }).map((p) => [p.pair, p.weight, p.index]),
      [
        ['a', 1, 0],
        ['c', 1, 2],
      ],
    );
    assert.deepEqual(
      upoSelect(pairs, conf, { mode: 'weight' }).map((p) => p.weight),
      conf,
    );
  });
  it('bad inputs: count mismatch, confidence outside [0, 1], threshold outside [0, 1]', () => {
    assert.throws(
      () => upoSelect(['a'], [0.5, 0.5], { mode: 'filter' }),
      /one confidence per pair \(1\), found 2/,
    );
    assert.throws(
      () => upoSelect(['a'], [1.5], { mode: 'filter' }),
      /confidence 0: expected \[0, 1\], found 1.5/,
    );
    assert.throws(() => upoSelect(['a'], [0.5], { mode: 'filter', threshold: 2 }), /threshold/);
  });
});

describe('LiST confidence filter', () => {
  const labels = [
    { prompt: 'a', completion: ' 1', confidence: 0.9 },
    { prompt: 'b', completion: ' 2', confidence: 0.2 },
    { prompt: 'c', completion: ' 3', confidence: 0.6 },
    { prompt: 'd', completion: ' 4', confidence: 0.95 },
    { prompt: 'e', completion: ' 5', confidence: 0.6 },
  ];
  it('threshold, then the most confident fraction (ceil), in the original order', () => {
    assert.deepEqual(
      listSelect(labels, { threshold: 0.5 }).map((l) => l.prompt),
      ['a', 'c', 'd', 'e'],
    );
    // 4 pass; ceil(4 * 0.5) = 2 most confident: d (0.95), a (0.9)
    assert.deepEqual(
      listSelect(labels, { threshold: 0.5, topFraction: 0.5 }).map((l) => l.prompt),
      ['a', 'd'],
    );
    // ties keep the earlier: ceil(4 * 0.75) = 3 -> d, a, c (c before e)
    assert.deepEqual(
      listSelect(labels, { threshold: 0.5, topFraction: 0.75 }).map((l) => l.prompt),
      ['a', 'c', 'd'],
    );
  });
  it('bad top fraction is an error', () => {
    assert.throws(() => listSelect(labels, { topFraction: 0 }), /top_fraction: expected \(0, 1\], found 0/);
  });
});
