import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { greedySoupSelect, runMerge } from '../../../src/merge/index.ts';
import { loadModel, saveModel } from '../../../src/models/index.ts';
import { cleanup, config, maxDiff, perturb, tempDir, tensorsOf, tinyModel } from './helpers.ts';

after(cleanup);

/** Scalar "models": the soup of members is their mean; loss is the squared distance to 1. */
function scalarSoup(values: number[]) {
  const calls: number[][] = [];
  const evaluate = (members: readonly number[]) => {
    calls.push([...members]);
    const mean = members.reduce((s, i) => s + values[i]!, 0) / members.length;
    return (mean - 1) ** 2;
  };
  return { select: () => greedySoupSelect(values.length, evaluate), calls };
}

describe('greedy soup', () => {
  it('orders by individual loss and accepts an ingredient only when the soup gets strictly better', () => {
    // losses 0.04, 0.04, 16: the first two average to 1 (loss 0) -> accepted; the third makes it worse
    const { select } = scalarSoup([1.2, 0.8, 5]);
    const s = select();
    assert.deepEqual(s.order, [0, 1, 2]);
    assert.deepEqual(s.accepted, [0, 1]);
    assert.deepEqual(
      s.tried.map((t) => t.accepted),
      [true, true, false],
    );
    assert.equal(s.loss, 0);
  });

  it('rejects an ingredient that leaves the loss equal (strictly lower is required)', () => {
    const s = scalarSoup([1.2, 1.2]).select();
    assert.deepEqual(s.accepted, [0]);
    assert.equal(s.tried[1]!.soupLoss, s.loss);
  });

  it('starts from the best ingredient whatever its position', () => {
    const s = scalarSoup([3, 1.05, 0.5]).select();
    assert.deepEqual(s.order, [1, 2, 0]);
    assert.equal(s.accepted[0], 1);
  });

  it('on tiny models: rejects a garbage ingredient and writes the average of the accepted ones', () => {
    const dir = tempDir();
    tinyModel(join(dir, 'base'), { seed: 1 });
    // near-uniform predictors (small weights) are good; a heavily perturbed copy is garbage
    const base = loadModel(join(dir, 'base'));
    for (const [, p] of base.model.namedParameters()) {
      const d = p.data as Float32Array;
      for (let j = 0; j < d.length; j++) d[j] = d[j]! * 0.05;
    }
    saveModel(base.model, join(dir, 'good1'), { tokenizer: base.tokenizer });
    perturb(base.model, 5, 0.002);
    saveModel(base.model, join(dir, 'good2'), { tokenizer: base.tokenizer });
    perturb(base.model, 6, 2.0);
    saveModel(base.model, join(dir, 'bad'), { tokenizer: base.tokenizer });
    writeFileSync(
      join(dir, 'eval.jsonl'),
      ['the cat sat on the mat', 'a dog ran in the park', 'we merge models']
        .map((text) => JSON.stringify({ text }))
        .join('\n'),
    );
    const models = [{ model: 'bad' }, { model: 'good1' }, { model: 'good2' }];
    const notes: string[] = [];
    const report = runMerge(
      config(
        { merge_method: 'greedy_soup', models, eval: { data: 'eval.jsonl', max_length: 32, batch_size: 2 } },
        dir,
      ),
      { out: join(dir, 'soup'), note: (l) => notes.push(l) },
    );
    const soup = report.greedySoup!;
    assert.ok(!soup.accepted.includes(0), 'the garbage model is rejected');
    assert.equal(soup.steps.at(-1)!.ref, 'bad');
    let best = soup.steps[0]!.soupLoss;
    for (const step of soup.steps.slice(1)) {
      assert.equal(step.accepted, step.soupLoss < best);
      if (step.accepted) best = step.soupLoss;
    }
    assert.equal(soup.loss, best);
    assert.equal(notes.filter((l) => l.startsWith('greedy_soup:')).length, 3);
    const linear = runMerge(
      config({ merge_method: 'linear', models: soup.accepted.map((i) => models[i]!) }, dir),
      { out: join(dir, 'linear') },
    );
    assert.equal(linear.models, soup.accepted.length);
    assert.equal(maxDiff(tensorsOf(join(dir, 'soup')), tensorsOf(join(dir, 'linear'))), 0);
  });
});
