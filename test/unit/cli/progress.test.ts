import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, formatFields, progress } from '../../../src/cli/progress.ts';

function recorder(isTTY = false) {
  const chunks: string[] = [];
  const stream = {
    isTTY,
    columns: 100,
    write(text: string) {
      chunks.push(text);
      return true;
    },
    cursorTo() {
      return true;
    },
    clearLine() {
      return true;
    },
    clearScreenDown() {
      return true;
    },
    moveCursor() {
      return true;
    },
    on() {
      return stream;
    },
    removeListener() {
      return stream;
    },
  };
  return { stream, chunks };
}

describe('progress', () => {
  it('without a terminal prints plain lines at most every 2 s, then a final line', () => {
    const { stream, chunks } = recorder();
    let clock = 0;
    const p = progress({ label: 'train', total: 100, stream, now: () => clock });
    for (let step = 1; step <= 100; step++) {
      clock += 100; // 10 steps per second
      p.update(step, { loss: 3 - step / 100 });
    }
    p.stop();
    p.stop();
    assert.equal(chunks.length, 5, chunks.join(''));
    assert.equal(chunks[0], 'train: 20/100 (20.0%) 10/s eta 8s loss=2.8\n');
    assert.equal(chunks[4], 'train: 100/100 (100.0%) in 10s loss=2\n');
  });

  it('prints a final line on stop when the last state was not printed', () => {
    const { stream, chunks } = recorder();
    let clock = 0;
    const p = progress({ label: 'eval', total: 10, stream, now: () => clock });
    clock = 500;
    p.increment(3);
    p.stop();
    assert.deepEqual(chunks, ['eval: 3/10 (30.0%) 6/s eta 1s\n']);
  });

  it('draws a cli-progress bar on a terminal and leaves no timer running', () => {
    const { stream, chunks } = recorder(true);
    const p = progress({ label: 'train', total: 4, stream });
    p.update(2, { loss: 1.5 });
    p.increment(2);
    p.stop();
    const text = chunks.join('');
    assert.match(text, /train \[/);
    assert.match(text, /4\/4/);
  });

  it('formats fields and durations', () => {
    assert.equal(
      formatFields({ loss: 2.345678, lr: 0.0001, phase: 'warmup' }),
      'loss=2.346 lr=1e-4 phase=warmup',
    );
    assert.equal(formatDuration(5), '5s');
    assert.equal(formatDuration(245), '4m05s');
    assert.equal(formatDuration(7380), '2h03m');
    assert.equal(formatDuration(Number.POSITIVE_INFINITY), '?');
  });
});
