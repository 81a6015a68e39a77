import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatNumber, formatTable } from '../../../src/cli/table.ts';

describe('formatTable', () => {
  it('aligns text left and numbers right, with - for missing values', () => {
    const text = formatTable([
      { kernel: 'matmul', gflops: 123.456 },
      { kernel: 'softmax', gflops: 7, note: 'fused' },
    ]);
    assert.equal(
      text,
      [
        'kernel   gflops  note',
        '-------  ------  -----',
        'matmul    123.5  -',
        'softmax       7  fused',
        '',
      ].join('\n'),
    );
  });

  it('takes an explicit column order and handles no columns', () => {
    assert.equal(formatTable([{ a: 1, b: 2 }], ['b', 'a']).split('\n')[0], 'b  a');
    assert.equal(formatTable([]), '');
  });

  it('formats numbers to 4 significant digits', () => {
    assert.equal(formatNumber(3), '3');
    assert.equal(formatNumber(1.23456), '1.235');
    assert.equal(formatNumber(12345.6), '12346');
    assert.equal(formatNumber(0.000012345), '1.23e-5');
    assert.equal(formatNumber(Number.NaN), 'NaN');
  });
});
