import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { halfOfLine, halvesOf } from '../../../../src/bench/experiments/lt-sft-compose.ts';

describe('lt_sft_compose halves', () => {
  it('alternates people between the halves in world order', () => {
    assert.deepEqual(
      [...halvesOf(['Ann Lee', 'Bo Park', 'Cy Dunn'])],
      [
        ['Ann Lee', 'A'],
        ['Bo Park', 'B'],
        ['Cy Dunn', 'A'],
      ],
    );
  });

  it('a line belongs to the taught person it names first; a line naming nobody to no half', () => {
    const halves = halvesOf(['Ann Lee', 'Bo Park']);
    assert.equal(halfOfLine('{"prompt":"Q: Where does Bo Park live?\\nA:"}', halves), 'B');
    assert.equal(halfOfLine('{"text":"Ann Lee was born in 1970. Her brother Bo Park ..."}', halves), 'A');
    assert.equal(halfOfLine('{"text":"Bo Park and Ann Lee"}', halves), 'B');
    assert.equal(halfOfLine('{"text":"nobody here"}', halves), null);
  });
});
