import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMergeBench } from '../../../src/bench/merge.ts';
import { parseOptions } from '../../../src/cli/args.ts';
import { mergeCommand } from '../../../src/cli/commands/merge.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { ConfigError, UsageError } from '../../../src/errors.ts';
import { cleanup, tempDir, tinyModel, variant, writeYaml } from './helpers.ts';

after(cleanup);

/** Run `attune merge <argv>` through the command's own option parsing (the registry is not needed). */
async function runMergeCommand(argv: string[], io: ReturnType<typeof captureIO>['io']): Promise<number> {
  return mergeCommand.run(parseOptions(argv, mergeCommand.options, 'attune merge', true), io);
}

describe('attune merge / attune bench merge', () => {
  it('merges a YAML config into --out and prints the report as the last JSON line', async () => {
    const dir = tempDir();
    tinyModel(join(dir, 'base'));
    variant(join(dir, 'base'), join(dir, 'ft'), 3);
    const yaml = writeYaml(
      join(dir, 'merge.yaml'),
      'merge_method: dare_linear\nbase_model: base\nmodels:\n  - model: ft\n    parameters: {weight: 1.0, density: 0.5}\nparameters: {rescale: inverse_density}\nseed: 7\n',
    );
    const { io, stdout, stderr } = captureIO();
    assert.equal(await runMergeCommand([yaml, '--out', join(dir, 'out'), '--json'], io), 0, stderr());
    const report = JSON.parse(stdout().trim().split('\n').at(-1)!);
    assert.equal(report.method, 'dare_linear');
    assert.equal(report.models, 1);
    assert.ok(report.peakTensorBytes <= report.boundBytes);
    assert.ok(existsSync(join(dir, 'out', 'model.safetensors')));
  });

  it('rejects config mistakes (ConfigError) and a missing --out (UsageError) with nothing written', async () => {
    const dir = tempDir();
    const yaml = writeYaml(
      join(dir, 'bad.yaml'),
      'merge_method: tie\nbase_model: base\nmodels: [{model: ft}]\n',
    );
    await assert.rejects(runMergeCommand([yaml, '--out', join(dir, 'out')], captureIO().io), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /unknown merge_method 'tie' \(did you mean 'ties'\?\)/);
      return true;
    });
    assert.equal(existsSync(join(dir, 'out')), false);
    await assert.rejects(
      runMergeCommand([yaml], captureIO().io),
      (e: unknown) => e instanceof UsageError && /--out <dir> is required/.test(e.message),
    );
  });

  it('bench merge returns the envelope with the memory bound per method', async () => {
    const env = await runMergeBench({ presets: ['tiny'], methods: ['linear', 'ties'] });
    assert.equal(env.bench, 'merge');
    assert.deepEqual(
      env.results.map((r) => r.method),
      ['linear', 'ties'],
    );
    for (const row of env.results) {
      assert.equal(row.within_bound, true);
      assert.ok((row.bound_bytes as number) > 0 && (row.seconds as number) >= 0);
    }
  });
});
