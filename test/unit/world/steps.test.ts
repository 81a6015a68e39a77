import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  checkSteps,
  gradeStepped,
  renderSteppedArithmetic,
  splitSteps,
  steppedSftRecords,
} from '../../../src/world/steps.ts';

describe('stepped arithmetic', () => {
  it('renders seeded, distinct questions whose solutions check step by step', () => {
    const a = renderSteppedArithmetic(7, 40);
    assert.deepEqual(a, renderSteppedArithmetic(7, 40));
    assert.notDeepEqual(a, renderSteppedArithmetic(8, 40));
    assert.equal(new Set(a.map((q) => q.entity)).size, 40);
    for (const q of a) {
      assert.match(q.prompt, /^Q: What is \d+ (plus|minus) \d+ (plus|minus) \d+\?\nA:$/);
      assert.deepEqual(checkSteps(q.solution), [true, true, null]);
      assert.ok(gradeStepped(q, q.solution));
      assert.ok(Number(q.answer) >= 0);
      // the answer is the expression's value, computed here independently
      const [x, o1, y, o2, z] = q.entity.split(' ');
      const first = o1 === 'plus' ? Number(x) + Number(y) : Number(x) - Number(y);
      assert.equal(q.answer, String(o2 === 'plus' ? first + Number(z) : first - Number(z)));
    }
    assert.equal(steppedSftRecords(a)[0]!.completion, ` ${a[0]!.solution}`);
  });

  it('splits steps at the delimiter, keeping it; an unterminated tail is a step', () => {
    assert.deepEqual(splitSteps('7 plus 5 is 12. 12 minus 3 is 9. The answer is 9.'), [
      '7 plus 5 is 12.',
      '12 minus 3 is 9.',
      'The answer is 9.',
    ]);
    assert.deepEqual(splitSteps('a. b'), ['a.', 'b']);
    assert.deepEqual(splitSteps(' . a.'), ['a.']);
    assert.deepEqual(splitSteps('x\ny', '\n'), ['x', 'y']);
    assert.throws(() => splitSteps('a', ''), /delimiter/);
  });

  it('grades the final answer only; step checks find a wrong step', () => {
    const q = { answer: '9' };
    assert.ok(gradeStepped(q, '7 plus 5 is 12. 12 minus 3 is 9. The answer is 9.'));
    assert.ok(gradeStepped(q, '7 plus 5 is 12. 12 minus 3 is 9. the answer is 9'));
    assert.ok(!gradeStepped(q, 'no answer here'));
    assert.ok(!gradeStepped(q, 'The answer is 9 apples.'));
    // a wrong step but a right final answer: the outcome says right, the step check says wrong
    const lucky = '7 plus 5 is 13. 13 minus 3 is 9. The answer is 9.';
    assert.ok(gradeStepped(q, lucky));
    assert.deepEqual(checkSteps(lucky), [false, false, null]);
    assert.ok(!gradeStepped(q, '7 plus 5 is 12. 12 minus 3 is 8. The answer is 8.'));
    assert.ok(!gradeStepped(q, 'The answer is 90.'));
  });
});
