// The installed `attune` command, run as a user would: through bin/attune.js, from another working
// directory, directly and through a node_modules/.bin symlink.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const elsewhere = mkdtempSync(join(tmpdir(), 'attune-cli-'));
after(() => rmSync(elsewhere, { recursive: true, force: true }));

function attune(args: string[], command: string[] = [process.execPath, bin]) {
  const res = spawnSync(command[0]!, [...command.slice(1), ...args], {
    cwd: elsewhere,
    encoding: 'utf8',
    env: { ...process.env, ATTUNE_DEBUG: '' },
    timeout: 120_000,
  });
  assert.equal(res.error, undefined);
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1]!;
}

describe('attune (bin/attune.js)', () => {
  it('--help lists the commands, exit 0', () => {
    const { status, stdout } = attune(['--help']);
    assert.equal(status, 0);
    assert.match(stdout, /Usage: attune <command>/);
    assert.match(stdout, /^ {2}doctor /m);
    assert.match(stdout, /^ {2}bench gemm /m);
  });

  it('doctor --json ends stdout with the report as JSON, exit 0', () => {
    const { status, stdout, stderr } = attune(['doctor', '--json']);
    assert.equal(status, 0, stderr);
    const report = JSON.parse(lastLine(stdout));
    assert.equal(report.node, process.version);
    assert.ok(report.cpu.cores >= 1);
    assert.ok(!('error' in report.backend), JSON.stringify(report.backend));
    assert.equal(report.backend.active, process.env.ATTUNE_BACKEND ?? report.backend.active);
    assert.deepEqual(report.problems, []);
  });

  it('runs through a node_modules/.bin symlink, as npm installs it', () => {
    const binDir = join(elsewhere, 'node_modules', '.bin');
    mkdirSync(binDir, { recursive: true });
    const link = join(binDir, 'attune');
    symlinkSync(bin, link);
    const { status, stdout, stderr } = attune(['doctor', '--json'], [link]);
    assert.equal(status, 0, stderr);
    assert.equal(JSON.parse(lastLine(stdout)).node, process.version);
  });

  it('a mistyped flag is one error line suggesting the right one, exit 2', () => {
    const { status, stdout, stderr } = attune(['doctor', '--jsn']);
    assert.equal(status, 2);
    assert.equal(stdout, '');
    assert.equal(stderr, "error: unknown option '--jsn' for 'attune doctor' (did you mean --json?)\n");
  });

  it('an unknown command is a usage error, exit 2', () => {
    const { status, stderr } = attune(['doctr']);
    assert.equal(status, 2);
    assert.match(stderr, /^error: unknown command 'doctr' \(did you mean 'attune doctor'\?\)\n$/);
  });
});
