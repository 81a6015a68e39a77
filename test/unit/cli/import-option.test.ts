/**
 * `--import FILE` on every command that loads or trains registered methods (plug-in tuners, losses,
 * adapters): the same option, loaded before the command reads its inputs, and the same one-line
 * error for a file that is not there.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { importOption } from '../../../src/cli/args.ts';
import { commands } from '../../../src/cli/commands/index.ts';
import { attune } from './commands/helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'attune-import-option-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A plug-in that counts its imports under globalThis[key]. */
function plugin(key: string): string {
  const file = join(root, `${key}.mjs`);
  writeFileSync(file, `globalThis.${key} = (globalThis.${key} ?? 0) + 1;\n`);
  return file;
}
const count = (key: string) => (globalThis as Record<string, unknown>)[key];

describe('--import', () => {
  it('is the same option on train, eval, generate, rounds and active', () => {
    for (const name of ['train', 'eval', 'generate', 'rounds', 'active']) {
      const c = commands.find((x) => x.name === name);
      assert.ok(c, name);
      assert.equal((c.options as Record<string, unknown>).import, importOption, `${name} --import`);
    }
  });

  it('is imported before the command reads its inputs (eval, generate, rounds, active)', async () => {
    const missing = join(root, 'missing');
    const runs: [string, string[]][] = [
      ['eval', ['eval', '--model', missing, '--data', join(root, 'missing.jsonl')]],
      ['generate', ['generate', '--model', missing, '--prompt', 'hi']],
      ['rounds', ['rounds', join(root, 'missing.yaml')]],
      ['active', ['active', join(root, 'missing.yaml')]],
    ];
    for (const [name, argv] of runs) {
      const key = `attunePlugin_${name}`;
      const r = await attune([...argv, '--import', plugin(key)]);
      assert.notEqual(r.status, 0, `${name}: the missing input is still an error`);
      assert.equal(count(key), 1, `${name}: the plug-in was imported once`);
      const bad = await attune([...argv, '--import', join(root, 'nope.mjs')]);
      assert.notEqual(bad.status, 0);
      assert.match(
        bad.stderr,
        /--import: '.*nope\.mjs': expected a plug-in module file .*found no file at/,
        name,
      );
    }
  });
});
