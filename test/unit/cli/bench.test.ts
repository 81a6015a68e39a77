import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { envelope } from '../../../src/bench/envelope.ts';
import { parseOptions } from '../../../src/cli/args.ts';
import {
  benchOptions,
  benchSettings,
  formatBenchEnvelope,
  importBench,
  printBench,
} from '../../../src/cli/bench.ts';
import { UnavailableError } from '../../../src/cli/errors.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { UsageError } from '../../../src/errors.ts';

const sample = envelope('gemm', 'native', 2, [
  { kernel: 'matmul', backend: 'js', n: 256, ms: 12.3456, gflops: 2.5 },
  { kernel: 'matmul', backend: 'native', n: 256, ms: 0.5, gflops: 67.1 },
]);

describe('bench commands', () => {
  it('validates the shared flags', () => {
    const parse = (argv: string[]) => parseOptions(argv, benchOptions, 'attune bench gemm').values;
    assert.deepEqual(parse(['--backend', 'both', '--threads', '2', '--seconds', '0.5']), {
      backend: 'both',
      threads: 2,
      seconds: 0.5,
    });
    assert.throws(() => parse(['--backend', 'gpu']), UsageError);
    assert.throws(() => parse(['--threads', '0']), UsageError);
    assert.throws(() => parse(['--seconds', '-1']), /--seconds: expected a number > 0, got "-1"/);
  });

  it('chooses backends: both drops a missing native addon with a note, native requires it', () => {
    const loaded = captureIO();
    assert.deepEqual(benchSettings({ backend: 'both', threads: 4 }, null, loaded.io), {
      backends: ['js', 'native'],
      threads: 4,
    });
    assert.equal(loaded.stderr(), '');
    const missing = captureIO();
    assert.deepEqual(benchSettings({ backend: 'both' }, 'not built', missing.io), { backends: ['js'] });
    assert.match(missing.stderr(), /timing js only; the native addon is not loaded \(not built\)/);
    assert.deepEqual(benchSettings({ backend: 'js' }, 'not built', captureIO().io), { backends: ['js'] });
    assert.throws(() => benchSettings({ backend: 'native' }, 'not built', captureIO().io), UnavailableError);
  });

  it('reports a missing harness or export as UnavailableError', async () => {
    await assert.rejects(importBench('no-such-harness.ts', 'run'), {
      name: 'UnavailableError',
      message: /no benchmark harness src\/bench\/no-such-harness\.ts/,
    });
    await assert.rejects(importBench('envelope.ts', 'runNothing'), {
      name: 'UnavailableError',
      message: 'src/bench/envelope.ts does not export runNothing()',
    });
    assert.equal(typeof (await importBench('envelope.ts', 'envelope')), 'function');
  });

  it('prints a table, then the envelope as the last line with --json', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await printBench(io, true, async () => sample), 0);
    const lines = stdout().trimEnd().split('\n');
    assert.deepEqual(JSON.parse(lines[lines.length - 1]!), sample);
    assert.equal(stdout(), `${formatBenchEnvelope(sample)}${JSON.stringify(sample)}\n`);
    assert.match(lines[0]!, /^gemm on .* \(native backend, 2 thread\(s\)\)$/);
    assert.match(lines[1]!, /^kernel +backend +n +ms +gflops$/);
    assert.match(stdout(), /matmul +native +256 +0\.5 +67\.1/);

    const plain = captureIO();
    await printBench(plain.io, false, async () => sample);
    assert.ok(!plain.stdout().includes('{'));
  });
});
