import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kindLabel } from '../../../src/cli/args.ts';
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

  it('shows usage, every option with its kind, range and default once, for every command', async () => {
    for (const command of commands) {
      const text = commandHelp(command);
      assert.match(text, new RegExp(`^Usage: attune ${command.name} `, 'm'));
      for (const [name, spec] of Object.entries(command.options)) {
        const line = text.split('\n').find((l) => new RegExp(`^  (-\\w, )? *--${name}( |$)`).test(l));
        assert.ok(line, `${command.name} --help lacks --${name}`);
        assert.ok(line.includes(spec.description), `${command.name} --${name}: no description`);
        assert.ok(
          (line.match(/default/g) ?? []).length <= 1,
          `${command.name} --${name}: default twice: ${line}`,
        );
        assert.ok(!line.includes('(default: none)'), line);
        if (spec.type === 'boolean') continue;
        const details = `(${kindLabel(spec)}`;
        assert.ok(line.includes(details), `${command.name} --${name}: no kind: ${line}`);
        if (spec.required) assert.match(line, /; required\)$/, line);
        else if (spec.default !== undefined || spec.defaultText !== undefined)
          assert.match(line, /; default: [^;]+\)$/, line);
        for (const alias of spec.deprecatedAliases ?? [])
          assert.ok(!text.includes(`--${alias} `), `${command.name}: deprecated --${alias} is hidden`);
      }
      for (const p of command.positionals ?? []) {
        const line = text.split('\n').find((l) => l.startsWith(`  <${p.name}> `));
        assert.ok(line?.endsWith(p.description), `${command.name}: argument <${p.name}>`);
      }
      assert.match(text, /-h, --help/);
      const { io, stdout } = captureIO();
      assert.equal(await main([...command.name.split(' '), '--help'], io), 0);
      assert.equal(stdout(), text);
    }
  });

  it('uses one vocabulary: --data for datasets, --input only for prediction files, --out, --overwrite', () => {
    for (const command of commands) {
      const names = Object.keys(command.options);
      for (const banned of ['output', 'output-dir', 'dataset', 'file', 'force', 'predictions'])
        assert.ok(!names.includes(banned), `${command.name} --${banned}`);
      // the commands that read a predictions file
      if (names.includes('input'))
        assert.ok(
          ['uq metrics', 'calibrate fit', 'calibrate conformal'].includes(command.name),
          `${command.name} --input`,
        );
      const writes = names.includes('out') && !command.name.startsWith('bench ');
      if (writes)
        assert.ok(names.includes('overwrite'), `${command.name} writes --out but has no --overwrite`);
      if (command.name.startsWith('bench '))
        assert.match(command.description ?? '', /manages its own output/);
    }
  });

  it('prints numeric kinds with their ranges (generate)', () => {
    const text = commandHelp(commands.find((c) => c.name === 'generate')!);
    assert.match(
      text,
      /--temperature <t> +0 = greedy; otherwise sample at this temperature \(number >= 0; default: 0\)/,
    );
    assert.match(text, /--top-p <p> .*\(number in \(0, 1\]; default: 1\)/);
    assert.match(text, /--max-new-tokens <n> .*\(integer >= 1; default: 64\)/);
    // generate's --model is optional (--strong replaces it); score's is required
    assert.match(text, /--model <dir> .*\(path\)/);
    assert.match(
      commandHelp(commands.find((c) => c.name === 'score')!),
      /--model <dir> .*\(path; required\)/,
    );
    assert.match(text, /--dtype <name> .*\(one of: f32, bf16, int8, nf4; default: f32\)/);
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
