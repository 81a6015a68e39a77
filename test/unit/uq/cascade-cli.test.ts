import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { cascadeCommand } from '../../../src/cli/commands/cascade.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-cascade-');
after(() => rmSync(root, { recursive: true, force: true }));

it('attune cascade runs both models and reports every rule against random and oracle', async () => {
  writeTinyModel(join(root, 'small'), { seed: 1, hidden: 32 });
  writeTinyModel(join(root, 'large'), { seed: 2, hidden: 32 });
  const data = writeJsonl(
    join(root, 'qa.jsonl'),
    Array.from({ length: 8 }, (_, i) => ({ prompt: `Q${i}:`, answer: 'x' })),
  );
  const { io, stdout } = captureIO();
  const args = parseOptions(
    [
      '--small',
      join(root, 'small'),
      '--large',
      join(root, 'large'),
      '--data',
      data,
      '--max-new-tokens',
      '3',
      '--json',
    ],
    cascadeCommand.options,
    'attune cascade',
  );
  assert.equal(await cascadeCommand.run(args, io), 0);
  const report = JSON.parse(stdout().trim().split('\n').at(-1)!);
  assert.equal(report.n, 4);
  for (const rule of ['chow_sum', 'chow_average', 'chow_quantile_0', 'chow_quantile_0.5', 'post_hoc_mlp']) {
    assert.ok(rule in report.methods, rule);
    assert.equal(report.methods[rule].curve.rates.length, 5);
  }
  assert.ok(report.oracle_auc_df >= report.random_auc_df);
});
