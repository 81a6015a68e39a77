/** `attune cascade` with adapters, graded quality, the post-hoc target and the --report file. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { cascadeCommand } from '../../../src/cli/commands/cascade.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { UsageError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { applyLora } from '../../../src/peft/index.ts';
import { type CascadeReport, predict } from '../../../src/uq/index.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { randomizeLora } from '../peft/helpers.ts';

const root = tempDir('attune-cascade-adapters-');
after(() => rmSync(root, { recursive: true, force: true }));

const base = writeTinyModel(join(root, 'base'), { seed: 1, hidden: 32 });
const wide = writeTinyModel(join(root, 'wide'), { seed: 2, hidden: 64 });

/** A random LoRA adapter over the model in `modelDir`, saved as `name`. */
function savedAdapter(modelDir: string, name: string, seed: number): string {
  const model = loadModel(modelDir).model;
  const adapter = applyLora(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'o_proj'] });
  randomizeLora(model, seed, 0.5);
  const dir = join(root, name);
  adapter.save(dir);
  return dir;
}
const adapter = savedAdapter(base, 'adapter', 3);
const wideAdapter = savedAdapter(wide, 'wide-adapter', 4);

// the gold answers are the base's own greedy answers, so the base alone scores 1 on every record
const prompts = Array.from({ length: 12 }, (_, i) => ({
  prompt: `Q${i} ${'ab'.repeat(i % 4)}:`,
  answer: '',
}));
const MAX_NEW = 4;
const loadedBase = loadModel(base);
const gold = predict(loadedBase.model, loadedBase.tokenizer!, prompts, { maxNewTokens: MAX_NEW });
const data = writeJsonl(
  join(root, 'qa.jsonl'),
  prompts.map((p, i) => ({ prompt: p.prompt, answer: gold[i]!.answer })),
);

async function run(flags: string[]): Promise<CascadeReport & { quality: string }> {
  const { io, stdout } = captureIO();
  const args = parseOptions(
    ['--data', data, '--max-new-tokens', String(MAX_NEW), '--json', ...flags],
    cascadeCommand.options,
    'attune cascade',
  );
  assert.equal(await cascadeCommand.run(args, io), 0);
  return JSON.parse(stdout().trim().split('\n').at(-1)!);
}

describe('attune cascade with adapters and graded quality', () => {
  it('an adapter changes the answers of the model it is applied to (small or large)', async () => {
    const plain = await run(['--small', base, '--large', base]);
    assert.equal(plain.small_accuracy, 1);
    assert.equal(plain.large_accuracy, 1);
    assert.equal(plain.oracle_auc_df, 1);
    const largeTuned = await run(['--small', base, '--large', `${base}:${adapter}`]);
    assert.equal(largeTuned.small_accuracy, 1);
    assert.ok(largeTuned.large_accuracy < 1, `large with adapter: ${largeTuned.large_accuracy}`);
    const smallTuned = await run(['--small', `${base}:${adapter}`, '--large', base]);
    assert.ok(smallTuned.small_accuracy < 1, `small with adapter: ${smallTuned.small_accuracy}`);
    assert.equal(smallTuned.large_accuracy, 1);
    // deferring everything to the (untuned) large model gives quality 1
    assert.equal(smallTuned.methods.chow_sum.curve.quality.at(-1), 1);
  });

  it('--quality rougeL grades by ROUGE-L F (>= the exact-match quality), --posthoc-target diff is reported', async () => {
    const flags = ['--small', `${base}:${adapter}`, '--large', base];
    const exact = await run(flags);
    const graded = await run([...flags, '--quality', 'rougeL', '--posthoc-target', 'diff']);
    assert.equal(graded.quality, 'rougeL');
    assert.equal(graded.post_hoc_target, 'diff');
    assert.equal(exact.post_hoc_target, 'better');
    // an exact match has ROUGE-L F 1, so graded quality is never below exact quality
    assert.ok(graded.small_accuracy >= exact.small_accuracy - 1e-12);
    assert.ok(graded.oracle_auc_df >= graded.random_auc_df - 1e-12);
  });

  it('--report writes an HTML page and an SVG with every rule and the random and oracle curves', async () => {
    const flags = ['--small', `${base}:${adapter}`, '--large', base];
    for (const file of ['cascade.html', 'cascade.svg']) {
      const path = join(root, file);
      const report = await run([...flags, '--report', path]);
      const text = readFileSync(path, 'utf8');
      assert.ok(file.endsWith('.html') ? text.startsWith('<!doctype html>') : text.startsWith('<svg'), file);
      for (const rule of [...Object.keys(report.methods), 'random', 'oracle']) {
        const m = text.match(new RegExp(`data-series="${rule} \\([0-9.]+\\)" data-points="(\\d+)"`));
        assert.ok(m, `${file}: ${rule}`);
        const expected = rule === 'random' ? 2 : report.n + 1;
        assert.equal(Number(m[1]), expected, `${file}: ${rule} points`);
      }
      // the legend carries each AUC-DF
      assert.ok(text.includes(`oracle (${report.oracle_auc_df.toFixed(3)})`));
    }
  });
});

describe('attune cascade bad inputs', () => {
  it('an adapter trained on another model is a clear error naming the flag and the model', async () => {
    await assert.rejects(
      run(['--small', `${base}:${wideAdapter}`, '--large', base]),
      (e: Error) =>
        e instanceof UsageError &&
        e.message.includes(
          `--small ${base}:${wideAdapter}: the adapter ${wideAdapter} does not fit the model ${base}`,
        ) &&
        e.message.includes('has shape'),
    );
  });
  it('a --report that is neither .html nor .svg fails before any model runs, and nothing is written', async () => {
    const path = join(root, 'report.png');
    await assert.rejects(
      run(['--small', base, '--large', base, '--report', path]),
      (e: Error) => e instanceof UsageError && e.message.includes('expected a .html or .svg file'),
    );
    assert.equal(existsSync(path), false);
  });
  it('an unknown --quality or --posthoc-target is refused by the option parser', () => {
    for (const flags of [
      ['--quality', 'bleu'],
      ['--posthoc-target', 'ratio'],
    ])
      assert.throws(
        () =>
          parseOptions(
            ['--small', base, '--large', base, '--data', data, ...flags],
            cascadeCommand.options,
            'x',
          ),
        /bleu|ratio/,
      );
  });
});
