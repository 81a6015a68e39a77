import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineCommand } from '../../../src/cli/command.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { main, reportError } from '../../../src/cli/main.ts';
import { ConfigError, UsageError } from '../../../src/errors.ts';

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1]!;
}

const fakeCommands = [
  defineCommand({
    name: 'report',
    summary: 'prints text then JSON',
    options: { json: { type: 'boolean', description: 'json' } },
    async run(args, io) {
      io.line('a human-readable table');
      if (args.values.json) io.json({ ok: true, text: 'two\nlines' });
      return 0;
    },
  }),
  defineCommand({
    name: 'late',
    summary: 'writes stdout after its JSON',
    options: {},
    async run(_args, io) {
      io.json({ first: true });
      io.line('too late');
      return 0;
    },
  }),
  defineCommand({
    name: 'fail expected',
    summary: 'throws an AttuneError',
    options: {},
    async run() {
      throw new ConfigError('rope_scaling type "yarn" is not supported\n(see docs)');
    },
  }),
  defineCommand({
    name: 'fail unexpected',
    summary: 'throws a plain Error',
    options: {},
    async run() {
      throw new TypeError('x is undefined');
    },
  }),
];

describe('main', () => {
  it('--json puts exactly one JSON object on the last stdout line', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await main(['report', '--json'], io, fakeCommands), 0);
    assert.deepEqual(JSON.parse(lastLine(stdout())), { ok: true, text: 'two\nlines' });
    assert.equal(
      stdout()
        .split('\n')
        .filter((l) => l.startsWith('{')).length,
      1,
    );
  });

  it('without --json prints no JSON', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await main(['report'], io, fakeCommands), 0);
    assert.equal(stdout(), 'a human-readable table\n');
  });

  it('refuses stdout after the JSON object', async () => {
    const { io, stdout, stderr } = captureIO();
    assert.equal(await main(['late'], io, fakeCommands), 1);
    assert.equal(lastLine(stdout()), '{"first":true}');
    assert.match(stderr(), /^error: internal: stdout written after the --json object/);
  });

  it('prints an expected error on one line without a stack, exit 1', async () => {
    const { io, stdout, stderr } = captureIO();
    assert.equal(await main(['fail', 'expected'], io, fakeCommands), 1);
    assert.equal(stderr(), 'error: rope_scaling type "yarn" is not supported (see docs)\n');
    assert.equal(stdout(), '');
  });

  it('points unexpected errors to ATTUNE_DEBUG, which prints the stack', async () => {
    const plain = captureIO();
    assert.equal(await main(['fail', 'unexpected'], plain.io, fakeCommands), 1);
    assert.equal(plain.stderr(), 'error: x is undefined (set ATTUNE_DEBUG=1 for the stack)\n');
    const debug = captureIO({ ATTUNE_DEBUG: '1' });
    assert.equal(await main(['fail', 'unexpected'], debug.io, fakeCommands), 1);
    assert.match(debug.stderr(), /^error: x is undefined\nTypeError: x is undefined\n\s+at /);
  });

  it('exits 2 on usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['reprot'], /^error: unknown command 'reprot' \(did you mean 'attune report'\?\)\n$/],
      [
        ['report', '--jsn'],
        /^error: unknown option '--jsn' for 'attune report' \(did you mean --json\?\)\n$/,
      ],
      [['fail'], /^error: 'attune fail' needs a command: expected, unexpected/],
      [['fail', 'expectd'], /did you mean 'attune fail expected'\?/],
      [['--verbose'], /^error: unknown option '--verbose' for 'attune'/],
    ];
    for (const [argv, expected] of cases) {
      const { io, stdout, stderr } = captureIO();
      assert.equal(await main(argv, io, fakeCommands), 2, argv.join(' '));
      assert.match(stderr(), expected);
      assert.equal(stderr().split('\n').length, 2, 'one line');
      assert.equal(stdout(), '');
    }
  });

  it('reportError maps error kinds to exit codes', () => {
    assert.equal(reportError(new UsageError('bad'), captureIO().io), 2);
    assert.equal(reportError(new ConfigError('bad'), captureIO().io), 1);
    const thrown = captureIO();
    assert.equal(reportError('a string', thrown.io), 1);
    assert.equal(thrown.stderr(), 'error: a string (set ATTUNE_DEBUG=1 for the stack)\n');
  });
});
