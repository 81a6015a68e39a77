import './one-thread.ts';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { loadSweepConfig, validateSweep } from '../../../src/sweep/config.ts';
import { expandTrials } from '../../../src/sweep/space.ts';
import { runSweep, type SweepResult } from '../../../src/sweep/sweep.ts';
import { loadBaseConfig, trialConfig, trialPaths, writeTrialConfig } from '../../../src/sweep/trial.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { predict, readEvalRecords, summarizePredictions } from '../../../src/uq/index.ts';
import { checkReport, chromiumOrSkip, launchChromium } from '../../helpers/browser.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-sweep-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'));
writeJsonl(join(root, 'train.jsonl'), FACTS);
writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
writeFileSync(
  join(root, 'train.yaml'),
  `model: model
data: { train: train.jsonl, eval: eval.jsonl, max_length: 32 }
method: { name: lora, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj] }
train: { steps: 4, batch_size: 2, lr: 1.0e-2, save_every: 2 }
output_dir: ignored
`,
);

/** Write a sweep file into root and return its path. */
function sweepFile(name: string, body: string): string {
  const path = join(root, name);
  writeFileSync(path, body);
  return path;
}

const GRID = `base: train.yaml
search: { grid: { train.lr: [1.0e-3, 1.0e-2], method.r: [2, 4] } }
seeds: [3]
objective: { metric: eval_loss, goal: min }
threads_per_trial: 1
`;

/** The trials without what depends on the run (which invocation ran them). */
const outcome = (r: SweepResult) => r.trials.map(({ ran: _, ...t }) => t);

describe('attune sweep', () => {
  it('validates the search against the training config before writing anything', () => {
    const check = (name: string, body: string, pattern: RegExp) => {
      const sweep = loadSweepConfig(sweepFile(name, body));
      assert.throws(
        () =>
          expandTrials(sweep).map((t) => trialConfig(loadBaseConfig(sweep.base), t, sweep.out, sweep.path)),
        pattern,
      );
    };
    check(
      'typo.yaml',
      `base: train.yaml\nsearch: { grid: { train.lrr: [0.1] } }\nobjective: { metric: eval_loss }\nout: typo\n`,
      /typo\.yaml: trial t-[0-9a-f]+ \(train\.lrr=0\.1\) of base .*train\.yaml: unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)/,
    );
    check(
      'option.yaml',
      `base: train.yaml\nsearch: { grid: { method.rank: [4] } }\nobjective: { metric: eval_loss }\nout: option\n`,
      /option\.yaml: trial .*method\.rank=4.*rank/,
    );
    check(
      'type.yaml',
      `base: train.yaml\nsearch: { random: { trials: 2, space: { train.steps: [fast] } } }\nobjective: { metric: eval_loss }\nout: type\n`,
      /train\.steps="fast".*field 'train\.steps'/,
    );
    // the sweep's runSweep refuses the same way, and leaves no out folder behind
    const sweep = loadSweepConfig(join(root, 'typo.yaml'));
    return assert
      .rejects(runSweep(sweep), /train\.lrr/)
      .then(() => assert.ok(!existsSync(join(root, 'typo'))));
  });

  it('names what is wrong in the sweep file itself', () => {
    const bad = (body: string, pattern: RegExp) =>
      assert.throws(() => validateSweep(parseYaml(body), 'S.yaml', root), pattern);
    bad(
      `base: b.yaml\nsearch: { bayes: { space: { train.lr: [1] } } }\nobjective: { metric: eval_loss }\nout: o\n`,
      /missing required field 'search\.bayes\.trials'/,
    );
    bad(
      `base: b.yaml\nsearch: { bayes: { trials: 3, space: { train.lr: [1] } } }\nobjective: [{ metric: eval_loss }, { metric: final_loss }, { metric: trainable_params }]\nout: o\n`,
      /one objective \(expected improvement\) or two \(expected hypervolume improvement\), found 3/,
    );
    bad(
      `base: b.yaml\nsearch: { grid: { train.lr: [1] } }\nobjective: { metric: accuracy }\nout: o\n`,
      /objective\.metric 'accuracy': expected one of eval_loss/,
    );
    bad(
      `base: b.yaml\nsearch: { grid: { output_dir: [a] } }\nobjective: { metric: eval_loss }\nout: o\n`,
      /'output_dir': each trial's output_dir is set by the sweep/,
    );
    bad(
      `base: b.yaml\nsearch: { grid: { train.seed: [1] } }\nseeds: [0]\nobjective: { metric: eval_loss }\nout: o\n`,
      /'train\.seed'/,
    );
    bad(
      `base: b.yaml\nsearch: { random: { trials: 2, space: { train.lr: { log_uniform: [1, 0.1] } } } }\nobjective: { metric: eval_loss }\nout: o\n`,
      /low <= high/,
    );
    bad(
      `base: b.yaml\nsearch: { grid: { train.lr: [1] } }\nobjective: { metric: eval_loss }\n`,
      /missing required field 'out'/,
    );
    // the executor is chosen by its name: errors name the field of that executor
    bad(
      `base: b.yaml\nsearch: { grid: { train.lr: [1] } }\nobjective: { metric: eval_loss }\nexecutor: { name: bullmq, url: 'redis://h:6379' }\nout: o\n`,
      /missing required field 'executor\.artifacts'/,
    );
    bad(
      `base: b.yaml\nsearch: { grid: { train.lr: [1] } }\nobjective: { metric: eval_loss }\nexecutor: { name: slurm }\nout: o\n`,
      /'executor\.name'.*'local' \| 'bullmq'/,
    );
    const noEval = sweepFile(
      'no-eval.yaml',
      'model: model\ndata: { train: train.jsonl }\ntrain: { steps: 2 }\n',
    );
    assert.throws(() => loadBaseConfig(noEval), /no-eval\.yaml: data\.eval: a sweep needs an eval file/);
  });

  it('runs a Bayesian search trial by trial on the results so far; a rerun reuses every finished trial', async () => {
    const path = sweepFile(
      'bayes.yaml',
      `base: train.yaml
search:
  bayes:
    trials: 4
    initial: 2
    seed: 1
    space:
      train.lr: { log_uniform: [1.0e-3, 3.0e-2] }
      method.r: [1, 2, 4]
      method.layers_to_transform: [[0], [1], [0, 1]]
objective: [{ metric: eval_loss, goal: min }, { metric: trainable_params, goal: min }]
eval_world: world-eval.jsonl
executor: { name: local, workers: 1 }
out: runs/bayes
`,
    );
    writeJsonl(join(root, 'world-eval.jsonl'), [
      { prompt: 'Ada lives in ', answer: 'Oslo.', split: 'taught' },
      { prompt: 'Bo lives in ', answer: 'Lima.', split: 'known' },
      { prompt: 'Cy lives in ', answer: 'Rome.', split: 'known' },
    ]);
    const sweep = loadSweepConfig(path);
    assert.equal(sweep.search.kind, 'bayes');
    const rounds: (number | null)[] = [];
    const first = await runSweep(sweep, { onPlan: (p) => rounds.push(p.round) });
    // 2 initial configurations, then one proposal at a time (batch = the one worker)
    assert.deepEqual(rounds, [0, 1, 2]);
    assert.equal(first.trials.length, 4);
    assert.equal(new Set(first.trials.map((t) => t.id)).size, 4);
    for (const t of first.trials) {
      assert.equal(t.status, 'done');
      const config = parseYaml(readFileSync(trialPaths(sweep.out, t.id).config, 'utf8'));
      assert.deepEqual(config.method.layers_to_transform, t.params['method.layers_to_transform']);
      // LoRA on q_proj and v_proj of the adapted layers: r·(in + out) per module
      const layers = (t.params['method.layers_to_transform'] as number[]).length;
      assert.equal(t.metrics!.trainable_params % (2 * layers * (t.params['method.r'] as number)), 0);
    }
    assert.deepEqual(first.fields, ['train.lr', 'method.r', 'method.layers_to_transform']);
    // eval_world: the trained adapter answered the world questions, graded per split
    for (const t of first.trials.slice(0, 2)) {
      const loaded = loadModel(join(root, 'model'));
      loadAdapter(loaded.model, join(trialPaths(sweep.out, t.id).run, 'adapter'));
      const preds = predict(
        loaded.model,
        loaded.tokenizer!,
        readEvalRecords(join(root, 'world-eval.jsonl')),
        {
          stop: ['\n'],
          maxNewTokens: 24,
        },
      );
      const share = (ps: typeof preds) => ps.filter((p) => p.correct).length / ps.length;
      assert.equal(t.metrics!.accuracy, share(preds));
      assert.equal(t.metrics!.accuracy_taught, share(preds.slice(0, 1)));
      assert.equal(t.metrics!.accuracy_known, share(preds.slice(1)));
      // and the bench's calibration and wrong-answer AUROC over the same answers (an undefined AUROC left out)
      const summary = summarizePredictions(preds);
      assert.equal(t.metrics!.ece, summary.confidence.ece);
      assert.equal(t.metrics!.brier, summary.confidence.brier);
      assert.ok(Object.keys(summary.scores).length > 0);
      for (const [name, s] of Object.entries(summary.scores))
        assert.equal(t.metrics![`wrong_auroc_${name}`], s.auroc ?? undefined);
    }
    assert.ok(first.pareto.length >= 1);
    const again = await runSweep(sweep);
    assert.deepEqual(
      again.trials.map((t) => t.ran),
      ['skipped', 'skipped', 'skipped', 'skipped'],
    );
    assert.deepEqual(outcome(again), outcome(first));
    // a bad choice fails before anything of the sweep is written
    const typo = loadSweepConfig(
      sweepFile(
        'bayes-typo.yaml',
        `base: train.yaml\nsearch: { bayes: { trials: 3, space: { method.r: [2, 4], method.use_dorra: [true] } } }\nobjective: { metric: eval_loss }\nout: runs/bayes-typo\n`,
      ),
    );
    await assert.rejects(runSweep(typo), /use_dorra/);
    assert.ok(!existsSync(typo.out));
  });

  it('runs every trial in its own folder; 2 workers = 1 worker; a rerun skips; an interrupted trial resumes exactly', async () => {
    // two workers, through the CLI
    const parallel = sweepFile(
      'parallel.yaml',
      `${GRID}executor: { name: local, workers: 2 }\nout: runs/parallel\n`,
    );
    const cli = await attune(['sweep', parallel, '--json']);
    assert.equal(cli.status, 0, cli.stderr);
    const json = cli.json as unknown as SweepResult;
    assert.deepEqual(Object.keys(json).slice(0, 2), ['trials', 'best']);
    assert.equal(json.trials.length, 4);
    for (const t of json.trials) {
      assert.deepEqual(Object.keys(t).sort(), ['id', 'metrics', 'params', 'ran', 'seed', 'status']);
      assert.equal(t.status, 'done');
      assert.equal(t.ran, 'started');
      assert.equal(t.seed, 3);
      // the trial's own folder: config in, metrics + adapter out, output_dir replaced
      const p = trialPaths(join(root, 'runs/parallel'), t.id);
      const config = parseYaml(readFileSync(p.config, 'utf8'));
      assert.equal(config.output_dir, p.run);
      assert.equal(config.train.lr, t.params['train.lr']);
      assert.equal(config.method.r, t.params['method.r']);
      assert.equal(config.train.seed, 3);
      assert.ok(existsSync(join(p.run, 'adapter', 'adapter_model.safetensors')));
      const lines = readFileSync(join(p.run, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(t.metrics!.eval_loss, lines.at(-1).eval_loss);
      assert.equal(t.metrics!.steps, 4);
    }
    // the rank doubles the LoRA parameters; a higher lr learns more in 4 steps
    const byParams = (lr: number, r: number) =>
      json.trials.find((t) => t.params['train.lr'] === lr && t.params['method.r'] === r)!.metrics!;
    assert.equal(byParams(1e-2, 4).trainable_params, 2 * byParams(1e-2, 2).trainable_params);
    assert.ok(byParams(1e-2, 4).eval_loss < byParams(1e-3, 4).eval_loss);
    const best = json.trials.reduce((a, b) => (b.metrics!.eval_loss < a.metrics!.eval_loss ? b : a));
    assert.equal(json.best!.id, best.id);
    assert.ok(json.pareto.includes(best.id));
    assert.match(cli.stdout, /trial +train\.lr +method\.r +seed +status/);

    // one worker, in process: the same numbers
    const sequential = loadSweepConfig(
      sweepFile('sequential.yaml', `${GRID}executor: { name: local, workers: 1 }\nout: runs/sequential\n`),
    );
    const one = await runSweep(sequential);
    assert.deepEqual(outcome(one), outcome(json));

    // a rerun runs nothing
    const resultFile = trialPaths(sequential.out, one.trials[0]!.id).result;
    const mtime = statSync(resultFile).mtimeMs;
    const again = await runSweep(sequential);
    assert.deepEqual(
      again.trials.map((t) => t.ran),
      ['skipped', 'skipped', 'skipped', 'skipped'],
    );
    assert.deepEqual(outcome(again), outcome(json));
    assert.equal(statSync(resultFile).mtimeMs, mtime);

    // a trial killed after its step-2 checkpoint resumes from it and ends where the uninterrupted one did
    const victim = one.trials[2]!;
    const spec = expandTrials(sequential).find((t) => t.id === victim.id)!;
    rmSync(trialPaths(sequential.out, victim.id).dir, { recursive: true });
    const config = trialConfig(loadBaseConfig(sequential.base), spec, sequential.out, sequential.path);
    writeTrialConfig(sequential.out, victim.id, config);
    assert.throws(() => train(config, { haltAfterStep: 2 }), TrainingHalted);
    const resumed = await runSweep(sequential);
    assert.deepEqual(
      resumed.trials.map((t) => t.ran),
      ['skipped', 'skipped', 'resumed', 'skipped'],
    );
    assert.deepEqual(outcome(resumed), outcome(json));
    const result = JSON.parse(readFileSync(trialPaths(sequential.out, victim.id).result, 'utf8'));
    assert.equal(result.resumed_from_step, 2);

    // the report: objective per trial, Pareto front, parallel coordinates, drawn in Chromium
    const availability = chromiumOrSkip();
    if (availability.skip) return;
    const browser = await launchChromium();
    try {
      const facts = await checkReport(browser, join(sequential.out, 'report.html'), {
        kinds: ['objective', 'pareto', 'parallel'],
      });
      assert.equal(facts.table!.length, 5);
      const parallelChart = facts.charts.find((c) => c.kind === 'parallel')!;
      assert.equal(parallelChart.series.length, 4);
      assert.ok(parallelChart.series.every((s) => s.points === 3));
    } finally {
      await browser.close();
    }
  });

  it('a trial that fails is reported with its error, the others finish, the exit status is 1', async () => {
    const path = sweepFile(
      'failing.yaml',
      `base: train.yaml\nsearch: { grid: { method.target_modules: [[q_proj], [no_such_proj]] } }\nobjective: { metric: eval_loss }\nexecutor: { name: local, workers: 2 }\nout: runs/failing\n`,
    );
    const cli = await attune(['sweep', path, '--json']);
    assert.equal(cli.status, 1);
    const json = cli.json as unknown as SweepResult;
    assert.deepEqual(
      json.trials.map((t) => t.status),
      ['done', 'failed'],
    );
    assert.match((json.trials[1] as { error?: string }).error!, /no_such_proj/);
    assert.equal(json.best!.id, json.trials[0]!.id);
  });
});
