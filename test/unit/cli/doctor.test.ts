import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { doctorReport, formatDoctorReport } from '../../../src/cli/commands/doctor.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';

describe('attune doctor', () => {
  it('reports the runtime, CPU, backend and ATTUNE_* variables', () => {
    const report = doctorReport({ ATTUNE_THREADS: '2', HOME: '/root', ATTUNE_BACKEND: 'js' });
    assert.equal(report.node, process.version);
    assert.ok(report.cpu.cores >= 1);
    assert.ok(report.cpu.model.length > 0);
    assert.deepEqual(report.env, { ATTUNE_BACKEND: 'js', ATTUNE_THREADS: '2' });
    assert.equal(report.native.loaded, report.native.error === '');
    if ('error' in report.backend) assert.ok(report.problems.length > 0);
    else assert.ok(['js', 'native'].includes(report.backend.active));
    const text = formatDoctorReport(report);
    for (const key of [
      'attune',
      'node',
      'cpu',
      'simd',
      'backend',
      'native addon',
      'native build',
      'bf16 gemm',
      'environment',
    ]) {
      assert.match(text, new RegExp(`^${key}: `, 'm'));
    }
    assert.match(text, /ATTUNE_THREADS=2/);
    assert.ok(report.bf16.path === 'js' || report.bf16.available.includes(report.bf16.path));
  });

  it('flags an ATTUNE_BF16_PATH that names no bf16 path', () => {
    const bad = doctorReport({ ATTUNE_BF16_PATH: 'amx2' });
    assert.ok(
      bad.problems.some((p) =>
        p.includes("ATTUNE_BF16_PATH must be amx, avx512bf16, fallback or auto, found 'amx2'"),
      ),
    );
    assert.ok(
      !doctorReport({ ATTUNE_BF16_PATH: 'fallback' }).problems.some((p) => p.includes('ATTUNE_BF16_PATH')),
    );
  });

  it('--json prints the report as the last stdout line', async () => {
    const { io, stdout } = captureIO({ ATTUNE_BACKEND: process.env.ATTUNE_BACKEND });
    const status = await main(['doctor', '--json'], io);
    const lines = stdout().trimEnd().split('\n');
    const report = JSON.parse(lines[lines.length - 1]!);
    assert.equal(status, report.problems.length > 0 ? 1 : 0);
    assert.equal(report.node, process.version);
    assert.ok(Array.isArray(report.cpu.features));
    assert.ok(lines.length > 1, 'the readable report comes first');
  });
});
