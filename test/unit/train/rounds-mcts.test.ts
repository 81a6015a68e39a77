import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generate, loadModel, scoreIds } from '../../../src/models/index.ts';
import {
  backup,
  childNode,
  commitChild,
  finalAnswerOf,
  loadRoundsConfig,
  makeReward,
  puctScore,
  qValue,
  type RewardFn,
  type RoundsSpec,
  readRoundPrompts,
  rootNode,
  runRounds,
  type StepNode,
  searchPairs,
  searchSteps,
  selectChild,
  selfEvalTerm,
  stepPairs,
  stepPrior,
} from '../../../src/train/rounds/index.ts';
import {
  correctTokenIds,
  optionPosition,
  selfEvalConfidences,
  selfEvalPrompt,
} from '../../../src/train/rounds/self-eval.ts';
import { renderSteppedArithmetic } from '../../../src/world/steps.ts';
import { tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-mcts-');
after(() => rmSync(root, { recursive: true, force: true }));

/** A node with hand-set statistics. */
const stats = (node: StepNode, visits: number, valueSum: number): StepNode =>
  Object.assign(node, { visits, valueSum });

describe('mcts tree', () => {
  it('PUCT selection on a hand-built tree', () => {
    const r = stats(rootNode(), 4, 2);
    r.expanded = true;
    const a = stats(childNode(r, 'a.', 0.5), 2, 1); // Q 0.5
    const b = stats(childNode(r, 'b.', 0.3), 1, 1); // Q 1
    const c = childNode(r, 'c.', 0.2); // unvisited
    r.children = [a, b, c];
    // c = 1: a 0.5 + 0.5*2/3 = 0.8333, b 1 + 0.3*2/2 = 1.3, c 0 + 0.2*2/1 = 0.4
    assert.ok(Math.abs(puctScore(r, a, 1) - (0.5 + 1 / 3)) < 1e-12);
    assert.ok(Math.abs(puctScore(r, b, 1) - 1.3) < 1e-12);
    assert.ok(Math.abs(puctScore(r, c, 1) - 0.4) < 1e-12);
    assert.equal(selectChild(r, 1), b);
    assert.equal(selectChild(r, 0), b); // no exploration: the highest Q
    // c = 20: a 0.5 + 20/3 = 7.17, b 1 + 6 = 7, c 0 + 8 = 8: the unvisited child wins
    assert.equal(selectChild(r, 20), c);
    assert.throws(() => selectChild(c, 1), /no children/);
    assert.equal(c.prefix, ' c.');
    assert.equal(childNode(c, 'd.', 1).prefix, ' c. d.');
  });

  it('backs up values along the path by hand', () => {
    const r = rootNode();
    const a = childNode(r, 'a.', 1);
    const b = childNode(a, 'b.', 1);
    backup([r, a, b], 1);
    backup([r, a], 0);
    backup([r], 0.5);
    assert.deepEqual(
      [r, a, b].map((n) => [n.visits, n.valueSum]),
      [
        [3, 1.5],
        [2, 1],
        [1, 1],
      ],
    );
    assert.equal(qValue(r), 0.5);
    assert.equal(qValue(a), 0.5);
    assert.equal(qValue(b), 1);
    assert.equal(qValue(childNode(b, 'x', 1)), 0);
    assert.throws(() => backup([r], Number.NaN), /finite/);
  });

  it('a step prior is its length-penalised probability', () => {
    // two tokens of p = 0.5: exp(2 log 0.5 / 2^1.25)
    const p = stepPrior([Math.log(0.5), Math.log(0.5)]);
    assert.ok(Math.abs(p - Math.exp((2 * Math.log(0.5)) / 2 ** 1.25)) < 1e-12);
    assert.ok(Math.abs(stepPrior([Math.log(0.25)], 1) - 0.25) < 1e-12);
    assert.ok(Math.abs(stepPrior([Math.log(0.5), Math.log(0.5)], 1) - 0.5) < 1e-12); // geometric mean
    assert.equal(stepPrior([]), 1);
  });

  it('pairs the max-Q and min-Q children of each node, respecting the margin', () => {
    const r = stats(rootNode(), 6, 3);
    const hi = stats(childNode(r, 'hi.', 0.2), 2, 2); // Q 1
    const mid = stats(childNode(r, 'mid.', 0.2), 2, 1); // Q 0.5
    const lo = stats(childNode(r, 'lo.', 0.2), 2, 0); // Q 0
    const unseen = childNode(r, 'never.', 0.4); // Q 0 but unvisited: not a candidate
    r.children = [unseen, mid, hi, lo];
    const x = stats(childNode(mid, 'x.', 0.5), 1, 0.75);
    const y = stats(childNode(mid, 'y.', 0.5), 1, 0.5);
    mid.children = [x, y];
    assert.deepEqual(stepPairs(r, 0.25), [
      { prefix: '', chosen: 'hi.', rejected: 'lo.', chosenQ: 1, rejectedQ: 0 },
      { prefix: ' mid.', chosen: 'x.', rejected: 'y.', chosenQ: 0.75, rejectedQ: 0.5 },
    ]);
    // the margin: 1 - 0 = 1 passes 1, the 0.25 gap of mid does not
    assert.deepEqual(
      stepPairs(r, 1).map((p) => p.chosen),
      ['hi.'],
    );
    assert.deepEqual(stepPairs(r, 1.01), []);
    assert.throws(() => stepPairs(r, 0), /margin/);
    // only at the given nodes (re-rooting pairs at its roots)
    assert.deepEqual(
      stepPairs(r, 0.25, [mid]).map((p) => p.prefix),
      [' mid.'],
    );
    assert.deepEqual(stepPairs(r, 0.25, []), []);
    // as preference records: the prompt plus the steps so far; each step after one space
    assert.deepEqual(searchPairs('Q: x?\nA:', r, 0.25)[1], {
      prompt: 'Q: x?\nA: mid.',
      chosen: ' x.',
      rejected: ' y.',
      chosen_reward: 0.75,
      rejected_reward: 0.5,
    });
  });

  it('commits to the most visited child, ties by Q, then the first', () => {
    const r = stats(rootNode(), 7, 3);
    const a = stats(childNode(r, 'a.', 0.9), 2, 2); // N 2, Q 1
    const b = stats(childNode(r, 'b.', 0.1), 3, 0); // N 3, Q 0
    const c = stats(childNode(r, 'c.', 0.1), 3, 1.5); // N 3, Q 0.5
    r.children = [a, b, c];
    assert.equal(commitChild(r), c); // most visits (3), then the higher Q
    c.valueSum = 0; // b and c tie on N and Q: the first
    assert.equal(commitChild(r), b);
    assert.throws(() => commitChild(a), /no children/);
  });

  it('the self-evaluation term by hand: weight x confidence / max(parent depth - 3, 1), 0 inherits', () => {
    assert.equal(selfEvalTerm(0.6, 0, 0.3, 1), 0.6);
    assert.equal(selfEvalTerm(0.6, 4, 0.3, 1), 0.6); // max(4 - 3, 1) = 1
    assert.equal(selfEvalTerm(0.6, 5, 0.3, 1), 0.3); // 0.6 / 2
    assert.ok(Math.abs(selfEvalTerm(0.6, 6, 0, 0.5) - 0.1) < 1e-15); // 0.5 * 0.6 / 3
    assert.equal(selfEvalTerm(0, 2, 0.3, 1), 0.3); // no option answered: the parent's term
    assert.equal(selfEvalTerm(0, 0, 0, 1), 0);
    assert.throws(() => selfEvalTerm(Number.NaN, 0, 0, 1), /confidence in \[0, 1\], found NaN/);
    assert.throws(() => selfEvalTerm(1.5, 0, 0, 1), /found 1\.5/);
  });

  it('the self-evaluation prompt and option reading as the released code', () => {
    const p = selfEvalPrompt('Q: What is 7 plus 5?\nA:', '12', ' 7 plus 5 is 12.');
    assert.equal(
      p,
      [
        'Q: What is 7 plus 5?',
        'EXAMPLE ANSWER: The answer is 12.',
        '',
        'PROPOSED SOLUTION: 7 plus 5 is 12.',
        '',
        'QUESTION: Evaluate if the proposed solution is logically heading in the correct direction based on the example answer.',
        'Answer Choices:',
        '(A) incorrect',
        '(B) correct',
        '',
        'ANSWER: The answer is',
      ].join('\n'),
    );
    // a one-line prompt keeps its line
    assert.ok(selfEvalPrompt('What is 7 plus 5?', '12', '').startsWith('What is 7 plus 5?\nEXAMPLE ANSWER'));
    // the first option word, then the second pass's word starts; -1 when none
    assert.equal(optionPosition([' (', 'B', ')']), 1);
    assert.equal(optionPosition(['In', 'A']), 1); // 'A' in the first pass beats 'In'
    assert.equal(optionPosition(['In', 'x']), 0);
    assert.equal(optionPosition(['12', '.']), -1);
  });

  it('reads the final answer of a stepped response', () => {
    assert.equal(finalAnswerOf('7 plus 5 is 12. 12 minus 3 is 9. The answer is 9.'), '9');
    assert.equal(finalAnswerOf('the answer is 3. no, the answer is 4.\nthe answer is 5'), '4');
    assert.equal(finalAnswerOf('12 minus 3 is 9.'), null);
    const reward = makeReward({ name: 'final_answer' });
    assert.deepEqual(
      reward(null as never, [
        { item: { prompt: 'p', answer: '9', line: 1 }, response: 'The answer is 9.' },
        { item: { prompt: 'p', answer: '9', line: 1 }, response: '9' },
      ]).map((g) => g.reward),
      [1, 0],
    );
    assert.throws(() => makeReward({ name: 'final_answer', file: 'x' }), /unknown option/);
  });
});

describe('mcts search', () => {
  writeTinyModel(join(root, 'model'), { hidden: 32 });
  const policy = loadModel(join(root, 'model'));
  // the random byte model: 'e' is a frequent byte, so steps end often and the tree grows deep
  const options = {
    iterations: 8,
    expand: 3,
    cPuct: 1,
    temperature: 1,
    stepTokens: 6,
    rolloutTokens: 8,
    maxDepth: 3,
    timeS: 600,
    delimiter: 'e',
    seed: 5,
  };
  const vowelsGrade = (rs: readonly string[]) =>
    rs.map((r) => Math.min(1, (r.match(/[aiou]/g) ?? []).length / 4));
  const shape = (n: StepNode): unknown => [n.step, n.visits, n.valueSum, n.children.map(shape)];

  it('is deterministic given its seed and keeps the statistics consistent', () => {
    const one = searchSteps(policy, 'Ada lives in', vowelsGrade, options);
    const two = searchSteps(policy, 'Ada lives in', vowelsGrade, options);
    assert.deepEqual(shape(one.root), shape(two.root));
    assert.deepEqual(one.evaluations, two.evaluations);
    const other = searchSteps(policy, 'Ada lives in', vowelsGrade, { ...options, seed: 6 });
    assert.notDeepEqual(shape(one.root), shape(other.root));
    assert.equal(one.iterations, 8);
    assert.ok(one.expanded >= 2, `expanded ${one.expanded}`);
    assert.ok(one.evaluations.length <= options.iterations * options.expand);
    // every backup reaches the root once; every child was valued at least once when created
    const check = (n: StepNode) => {
      const under = n.children.reduce((s, c) => s + c.visits, 0);
      // a node's visits: its own evaluation when it was created (not the root's), then every
      // backup through it went on to one of its children
      if (n.children.length > 0) assert.equal(n.visits, under + (n.depth > 0 ? 1 : 0), n.prefix);
      assert.ok(qValue(n) >= 0 && qValue(n) <= 1);
      assert.ok(n.depth <= options.maxDepth);
      for (const c of n.children) {
        assert.ok(c.visits >= 1);
        assert.equal(c.prefix, `${n.prefix} ${c.step}`);
      }
      for (const c of n.children) assert.ok(c.prior > 0 && c.prior <= 1);
      n.children.forEach(check);
    };
    check(one.root);
    // one backup per graded answer, plus one per revisit of a finished answer (at most one an iteration)
    assert.ok(one.root.visits >= one.evaluations.length);
    assert.ok(one.root.visits <= one.evaluations.length + one.iterations);
  });

  it('weight 0 asks no self-evaluation and is bit-identical to the outcome-only search', () => {
    const plain = searchSteps(policy, 'Ada lives in', vowelsGrade, options);
    let asked = 0;
    const off = searchSteps(
      policy,
      'Ada lives in',
      vowelsGrade,
      { ...options, selfEvalWeight: 0, reroot: false },
      Date.now,
      {
        selfEvaluate: (ps) => {
          asked++;
          return ps.map(() => 1);
        },
      },
    );
    assert.equal(asked, 0);
    assert.deepEqual(shape(off.root), shape(plain.root));
    assert.deepEqual(off.evaluations, plain.evaluations);
    assert.deepEqual(off.roots, [off.root]);
    assert.throws(
      () => searchSteps(policy, 'Ada lives in', vowelsGrade, { ...options, selfEvalWeight: 1 }),
      /needs a self-evaluator/,
    );
  });

  it('mixes the self-evaluation into every value (outcome 0: the values are the terms, by hand)', () => {
    // confidence 0 for prefixes of even length (they inherit the parent's term), else 0.4
    const conf = (p: string) => (p.length % 2 === 0 ? 0 : 0.4);
    const seen: string[] = [];
    const w = 2.5;
    const r = searchSteps(
      policy,
      'Ada lives in',
      (rs) => rs.map(() => 0),
      { ...options, maxDepth: 5, selfEvalWeight: w },
      Date.now,
      {
        selfEvaluate: (ps) => {
          seen.push(...ps);
          return ps.map(conf);
        },
      },
    );
    let inherited = 0;
    const check = (n: StepNode, parent: StepNode | null) => {
      if (parent) {
        assert.ok(seen.includes(n.prefix), n.prefix);
        // the term of the released code: w * conf / max(parent depth - 3, 1), or the parent's term
        const c = conf(n.prefix);
        const term = c > 0 ? (w * c) / Math.max(parent.depth - 3, 1) : parent.selfEval;
        if (c === 0 && parent.selfEval > 0) inherited++;
        assert.equal(n.selfEval, term, n.prefix);
      }
      // every value backed up through n started at n (its own term) or below it
      const below = n.children.reduce((s, c) => s + c.valueSum, 0);
      if (n.children.length === 0) assert.ok(Math.abs(n.valueSum - n.visits * n.selfEval) < 1e-12, n.prefix);
      else assert.ok(Math.abs(n.valueSum - (below + (parent ? n.selfEval : 0))) < 1e-12, n.prefix);
      for (const c of n.children) check(c, n);
    };
    check(r.root, null);
    assert.ok(inherited > 0, 'some step inherited its parent term');
    assert.ok(r.root.valueSum > 0);
    assert.ok(r.evaluations.every((e) => e.reward === 0)); // samples keep the outcome
  });

  it('re-roots: 4 x iterations from the root, then each search from the committed child; pairs at every root', () => {
    const calls: { top: StepNode; iterations: number; committed: boolean; rootVisits: number }[] = [];
    const r = searchSteps(
      policy,
      'Ada lives in',
      vowelsGrade,
      { ...options, iterations: 2, reroot: true },
      Date.now,
      {
        onSearch: (top, iterations) => {
          const prev = calls.at(-1)?.top;
          calls.push({
            top,
            iterations,
            committed: prev ? prev.children.includes(top) && commitChild(prev) === top : true,
            rootVisits: (calls[0]?.top ?? top).visits,
          });
        },
      },
    );
    assert.ok(calls.length >= 2, `searches ${calls.length}`);
    assert.deepEqual(
      calls.map((c) => c.top),
      r.roots,
    );
    assert.equal(calls[0]!.top, r.root);
    assert.deepEqual(
      calls.map((c) => c.iterations),
      [8, ...calls.slice(1).map(() => 2)],
    );
    assert.ok(calls.every((c) => c.committed));
    assert.equal(r.iterations, 8 + 2 * (calls.length - 1));
    r.roots.forEach((n, i) => {
      assert.equal(n.depth, i);
    });
    // the later searches start at the committed child: no backup reached the root after the first
    assert.ok(calls.slice(1).every((c) => c.rootVisits === r.root.visits));
    assert.ok(r.roots[1]!.visits > 0);
    const afterFirst = searchSteps(policy, 'Ada lives in', vowelsGrade, { ...options, iterations: 8 });
    assert.equal(r.root.visits, afterFirst.root.visits);
    assert.deepEqual(
      (shape(r.root) as unknown[]).slice(0, 3),
      (shape(afterFirst.root) as unknown[]).slice(0, 3),
    );
    // pairs: at each root only, one per root whose children differ by the margin
    const pairs = searchPairs('Ada lives in', r.root, 0.05, r.roots);
    const perRoot = r.roots.filter((n) => stepPairs(n, 0.05, [n]).length === 1);
    assert.ok(perRoot.length >= 2, `roots with a pair ${perRoot.length}`);
    assert.deepEqual(
      pairs.map((p) => p.prompt),
      perRoot.map((n) => `Ada lives in${n.prefix}`),
    );
  });

  it('stops at the wall-time budget', () => {
    let t = 0;
    const clock = () => {
      t += 1000;
      return t;
    };
    const r = searchSteps(policy, 'Bo lives in', vowelsGrade, { ...options, timeS: 3 }, clock);
    assert.ok(r.iterations < options.iterations, `iterations ${r.iterations}`);
  });
});

describe('mcts self-evaluation', () => {
  const world = loadModel(join(process.cwd(), 'world-bases', 'small'));
  const tok = world.tokenizer!;

  it('the "correct" ids are the whole-word tokens only', () => {
    // WordPiece spells 'correct' in pieces: only 'B' ('B', '(B', ' B' all end in it) counts
    assert.deepEqual(
      correctTokenIds(tok).map((id) => tok.decode([id])),
      ['B'],
    );
    const bytes = loadModel(join(root, 'model')).tokenizer!;
    assert.deepEqual(
      correctTokenIds(bytes).map((id) => bytes.decode([id])),
      ['B'],
    );
  });

  it('the confidence is p(B) at the first option word of the greedy answer; a prompt that does not fit is 0', () => {
    const q = renderSteppedArithmetic(4, 2);
    const prompts = [
      selfEvalPrompt(q[0]!.prompt, q[0]!.answer, ' 1 plus 2 is 3.'),
      selfEvalPrompt(q[1]!.prompt, q[1]!.answer, ''),
      selfEvalPrompt(q[1]!.prompt, q[1]!.answer, ` ${q[1]!.solution} ${q[1]!.solution}`), // too long for 192 positions
    ];
    const conf = selfEvalConfidences(world, prompts);
    const [b] = correctTokenIds(tok);
    let found = 0;
    prompts.forEach((p, i) => {
      const ids = tok.encode(p);
      if (ids.length + 4 > world.model.config.maxPositionEmbeddings) {
        assert.equal(conf[i], 0);
        return;
      }
      // by another path: one greedy decode, then teacher-forced scoring of B after the tokens before the option
      const g = generate(world.model, ids, {
        temperature: 0,
        maxNewTokens: 4,
        eosTokenIds: world.eosTokenIds,
      });
      const at = optionPosition(g.generatedIds.map((id) => tok.decode([id])));
      if (at < 0) {
        assert.equal(conf[i], 0);
        return;
      }
      found++;
      const scored = scoreIds(world.model, [...ids, ...g.generatedIds.slice(0, at), b!]);
      const pb = Math.exp(scored.tokens.at(-1)!.logprob!);
      assert.ok(Math.abs(conf[i]! - pb) <= 1e-4 * pb + 1e-12, `${conf[i]} vs ${pb}`);
    });
    assert.equal(conf[2], 0);
    assert.ok(found >= 1, 'some greedy answer names an option');
  });
});

describe('mcts rounds', () => {
  it('one round on the tiny world base: step pairs, DPO, a merged policy; the config validates', async () => {
    const questions = renderSteppedArithmetic(3, 3);
    const promptsFile = writeJsonl(
      join(root, 'stepped.jsonl'),
      questions.map((q) => ({ prompt: q.prompt, answer: q.answer })),
    );
    const prompts = readRoundPrompts(promptsFile);
    // the untrained world base never answers arithmetic, so the outcome here is a stand-in: longer is better
    const longer: RewardFn = (_p, samples) =>
      samples.map((s) => ({ reward: s.response.length >= 12 ? 1 : 0 }));
    const spec: RoundsSpec = {
      kind: 'mcts',
      rounds: 1,
      samples: 1,
      temperature: 1,
      max_new_tokens: 12,
      seed: 2,
      upo_threshold: 0.8,
      list_threshold: 0,
      list_top_fraction: 1,
      mcts: { iterations: 4, expand: 3, margin: 0.5, max_depth: 3, step_tokens: 8 },
    };
    const config = tinyConfig(root, {
      model: join(process.cwd(), 'world-bases', 'small'),
      data: { train: promptsFile, max_length: 48 },
      loss: { name: 'dpo', beta: 0.5 },
      train: { steps: 2, batch_size: 2, lr: 1e-2, seed: 0 },
      output_dir: join(root, 'rounds'),
    });
    const events: string[] = [];
    const out = await runRounds(config, spec, prompts, {
      reward: longer,
      onEvent: (e) => {
        if (e.type === 'searched') events.push(`${e.done}/${e.total}`);
      },
    });
    assert.deepEqual(events, ['1/3', '2/3', '3/3']);
    assert.equal(out.length, 1);
    assert.ok((out[0]!.nodes ?? 0) >= 3);
    const pairs = readFileSync(join(root, 'rounds', 'round-1', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(out[0]!.kept, pairs.length);
    assert.ok(pairs.length >= 1);
    for (const p of pairs) {
      assert.ok(p.chosen_reward - p.rejected_reward >= 0.5);
      assert.ok(questions.some((q) => p.prompt.startsWith(q.prompt)));
      assert.notEqual(p.chosen, p.rejected);
    }
    assert.ok(existsSync(join(out[0]!.policy, 'config.json')));
    const yaml = join(root, 'mcts.yaml');
    writeFileSync(
      yaml,
      [
        `model: ${join(process.cwd(), 'world-bases', 'small')}`,
        'method: lora',
        'loss: {name: dpo, beta: 0.1}',
        'train: {steps: 2}',
        `output_dir: ${join(root, 'cfg-out')}`,
        `rounds: {kind: mcts, prompts: ${promptsFile}, reward: {name: final_answer}, mcts_iterations: 5, mcts_margin: 0.25}`,
      ].join('\n'),
    );
    const loaded = loadRoundsConfig(yaml);
    assert.equal(loaded.spec.kind, 'mcts');
    assert.equal(loaded.spec.mcts?.iterations, 5);
    assert.equal(loaded.spec.mcts?.margin, 0.25);
    assert.equal(loaded.spec.mcts?.expand, 3);
    // the released code's defaults: self-evaluation at weight 1, re-rooting
    assert.equal(loaded.spec.mcts?.self_eval_weight, 1);
    assert.equal(loaded.spec.mcts?.reroot, true);
    const off = loadRoundsConfig(yaml, ['rounds.mcts_reroot=false', 'rounds.mcts_self_eval_weight=0.5']);
    assert.equal(off.spec.mcts?.reroot, false);
    assert.equal(off.spec.mcts?.self_eval_weight, 0.5);
    assert.throws(() => loadRoundsConfig(yaml, ['rounds.mcts_self_eval_weight=-1']), /mcts_self_eval_weight/);
    // self-evaluation shows the gold answer: a prompt without one is an error before any round
    const bare = writeJsonl(join(root, 'bare.jsonl'), [{ prompt: 'Q: What is 1 plus 2?\nA:' }]);
    await assert.rejects(
      runRounds({ ...config, output_dir: join(root, 'bare-out') }, spec, readRoundPrompts(bare), {
        reward: longer,
      }),
      /line 1: mcts self-evaluation needs an "answer"/,
    );
    assert.ok(!existsSync(join(root, 'bare-out')));
    assert.throws(() => loadRoundsConfig(yaml, ['rounds.mcts_expand=1']), /mcts_expand/);
    assert.throws(() => loadRoundsConfig(yaml, ['rounds.mcts_margin=0']), /mcts_margin/);
    assert.throws(() => loadRoundsConfig(yaml, ['loss=ce']), /rounds\.kind 'mcts' trains on pairs/);
    // the CLI: the untrained base never answers arithmetic, so the outcome reward gives no pair:
    // a non-zero exit with the reason, and no training
    const cli = await attune(['rounds', yaml, '--set', 'rounds.mcts_iterations=2']);
    assert.notEqual(cli.status, 0);
    assert.match(
      cli.stderr,
      /round 1: the search found no step pair \(\d+ answers graded, mean reward 0\.000\)/,
    );
    assert.ok(!existsSync(join(root, 'cfg-out', 'round-1', 'run')));
    const help = await attune(['rounds', '--help']);
    assert.match(help.stdout, /mcts_iterations/);
  });
});
