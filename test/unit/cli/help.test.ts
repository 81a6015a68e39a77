import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commands } from '../../../src/cli/commands/index.ts';
import { commandHelp, groupHelp, mainHelp } from '../../../src/cli/help.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';

describe('help', () => {
  it('lists every command in `attune --help`', async () => {
    const { io, stdout, stderr } = captureIO();
    assert.equal(await main(['--help'], io), 0);
    for (const command of commands) {
      assert.ok(
        stdout()
          .split('\n')
          .some((line) => line.startsWith(`  ${command.name} `) && line.endsWith(command.summary)),
        command.name,
      );
    }
    assert.equal(stderr(), '');
    assert.equal(mainHelp(commands, '9.9.9').split('\n')[0]!.includes('9.9.9'), true);
  });

  it('prints the command list for `attune` without arguments', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await main([], io), 0);
    assert.match(stdout(), /Usage: attune <command>/);
  });

  it('shows usage, every option with its default and description, for every command', async () => {
    for (const command of commands) {
      const text = commandHelp(command);
      assert.match(text, new RegExp(`^Usage: attune ${command.name} `, 'm'));
      for (const [name, spec] of Object.entries(command.options)) {
        const line = text.split('\n').find((l) => new RegExp(`^  (-\\w, )? *--${name}( |$)`).test(l));
        assert.ok(line, `${command.name} --help lacks --${name}`);
        assert.ok(line.includes(spec.description), `${command.name} --${name}: no description`);
        assert.match(line, /\(default: [^)]+\)/, `${command.name} --${name}: no default`);
      }
      assert.match(text, /-h, --help/);
      const { io, stdout } = captureIO();
      assert.equal(await main([...command.name.split(' '), '--help'], io), 0);
      assert.equal(stdout(), text);
    }
  });

  it('shows a command group', async () => {
    const bench = commands.filter((c) => c.name.startsWith('bench '));
    const { io, stdout } = captureIO();
    assert.equal(await main(['bench', '--help'], io), 0);
    assert.equal(stdout(), groupHelp('bench', bench));
    assert.match(stdout(), /bench gemm/);
    assert.match(stdout(), /bench kernels/);
  });

  it('--help wins over other flags, even unknown ones', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await main(['doctor', '--bogus', '--help'], io), 0);
    assert.match(stdout(), /Usage: attune doctor/);
  });

  it('prints the version', async () => {
    const { io, stdout } = captureIO();
    assert.equal(await main(['--version'], io), 0);
    assert.match(stdout(), /^\d+\.\d+\.\d+\n$/);
  });
});
