/** `attune uq fit-density` then `attune eval --extra ... --density`: the scores, and the file refused for another model. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { calibrateFitCommand } from '../../../src/cli/commands/calibrate-fit.ts';
import { evalCommand } from '../../../src/cli/commands/eval.ts';
import { uqFitDensityCommand } from '../../../src/cli/commands/uq-fit-density.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { ConfigError, UsageError } from '../../../src/errors.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-density-');
after(() => rmSync(root, { recursive: true, force: true }));

async function run(
  command: typeof evalCommand | typeof uqFitDensityCommand | typeof calibrateFitCommand,
  argv: string[],
) {
  const { io, stdout } = captureIO();
  const args = parseOptions(argv, command.options as never, `attune ${command.name}`);
  const code = await command.run(args as never, io);
  return { code, json: JSON.parse(stdout().trim().split('\n').at(-1)!) };
}

it('fits a density with provenance, eval reports mahalanobis / relative MD, another model is refused', async () => {
  const a = writeTinyModel(join(root, 'a'), { seed: 1, hidden: 16 });
  const b = writeTinyModel(join(root, 'b'), { seed: 2, hidden: 16 });
  const train = writeJsonl(
    join(root, 'train.jsonl'),
    Array.from({ length: 6 }, (_, i) => ({ prompt: `Q${i}:`, completion: ` a${i}` })),
  );
  const background = writeJsonl(
    join(root, 'bg.jsonl'),
    Array.from({ length: 5 }, (_, i) => ({ text: `some text ${i * 7}` })),
  );
  const qa = writeJsonl(
    join(root, 'qa.jsonl'),
    Array.from({ length: 4 }, (_, i) => ({ prompt: `Q${i}:`, answer: 'x' })),
  );
  const out = join(root, 'density.json');
  const fit = await run(uqFitDensityCommand, [
    '--model',
    a,
    '--data',
    train,
    '--background',
    background,
    '--out',
    out,
    '--json',
  ]);
  assert.equal(fit.code, 0);
  assert.equal(fit.json.n, 6);
  assert.equal(fit.json.background_n, 5);
  const file = JSON.parse(readFileSync(out, 'utf8'));
  assert.equal(file.fitted_on.model.path, a);
  assert.equal(file.in_domain.mean.length, 16);
  await assert.rejects(
    run(uqFitDensityCommand, ['--model', a, '--data', train, '--out', out]),
    (e: Error) => e instanceof ConfigError && /already exists/.test(e.message),
  );
  const evaluated = await run(evalCommand, [
    '--model',
    a,
    '--data',
    qa,
    '--extra',
    'rauq,mahalanobis,relative_mahalanobis',
    '--density',
    out,
    '--max-new-tokens',
    '3',
    '--out',
    join(root, 'eval'),
    '--json',
  ]);
  assert.equal(evaluated.code, 0);
  for (const name of ['msp', 'rauq', 'mahalanobis', 'relative_mahalanobis'])
    assert.ok(name in evaluated.json.scores, name);
  const lines = readFileSync(join(root, 'eval', 'predictions.jsonl'), 'utf8')
    .trim()
    .split('\n');
  assert.ok(lines.every((l) => typeof JSON.parse(l).mahalanobis === 'number'));
  await assert.rejects(
    run(evalCommand, [
      '--model',
      b,
      '--data',
      qa,
      '--extra',
      'mahalanobis',
      '--density',
      out,
      '--out',
      join(root, 'e2'),
    ]),
    (e: Error) => e instanceof ConfigError && /fitted on the model at/.test(e.message),
  );
  await assert.rejects(
    run(evalCommand, ['--model', a, '--data', qa, '--extra', 'mahalanobis', '--out', join(root, 'e3')]),
    (e: Error) => e instanceof UsageError && /add --density FILE/.test(e.message),
  );
});

it('calibrate fit --score rauq fits on the extra-pass score, and eval --calibrator computes it', async () => {
  const a = writeTinyModel(join(root, 'c'), { seed: 3, hidden: 16 });
  const qa = writeJsonl(
    join(root, 'qa2.jsonl'),
    Array.from({ length: 6 }, (_, i) => ({ prompt: `Q${i}:`, answer: i % 2 === 0 ? 'x' : 'y' })),
  );
  const cal = join(root, 'rauq-cal.json');
  const fit = await run(calibrateFitCommand, [
    '--model',
    a,
    '--data',
    qa,
    '--method',
    'isotonic',
    '--score',
    'rauq',
    '--max-new-tokens',
    '3',
    '--out',
    cal,
    '--json',
  ]);
  assert.equal(fit.code, 0);
  assert.equal(fit.json.fitted_on.score, 'rauq');
  const evaluated = await run(evalCommand, [
    '--model',
    a,
    '--data',
    qa,
    '--calibrator',
    cal,
    '--max-new-tokens',
    '3',
    '--out',
    join(root, 'eval-cal'),
    '--json',
  ]);
  assert.equal(evaluated.code, 0);
  assert.ok('rauq' in evaluated.json.scores);
  assert.ok(evaluated.json.uncalibrated);
});
