// Plug-in modules (src/config/plugins.ts): named by file, resolved to one real path, imported once;
// a missing file or one that throws is a one-line error naming it.
import assert from 'node:assert/strict';
import { mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPlugins, resolvePlugins } from '../../../src/config/plugins.ts';
import { ConfigError } from '../../../src/errors.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = realpathSync(tempDir('attune-plugins-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('plug-in modules', () => {
  it('resolve relative to a folder to one real absolute path; a missing file or a folder is named', () => {
    writeFileSync(join(root, 'a.mjs'), 'globalThis.attunePluginA = (globalThis.attunePluginA ?? 0) + 1;\n');
    symlinkSync(join(root, 'a.mjs'), join(root, 'link.mjs'));
    mkdirSync(join(root, 'dir'));
    assert.deepEqual(resolvePlugins(['a.mjs', join(root, 'link.mjs')], root, 'sweep.yaml: imports'), [
      join(root, 'a.mjs'),
      join(root, 'a.mjs'),
    ]);
    assert.throws(
      () => resolvePlugins(['nope.ts'], root, 'sweep.yaml: imports'),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message ===
          `sweep.yaml: imports: 'nope.ts': expected a plug-in module file (.js, .mjs or .ts), found no file at ${join(root, 'nope.ts')}`,
    );
    assert.throws(() => resolvePlugins(['dir'], root, '--import'), /--import: 'dir': .*found a folder at/);
  });

  it('load in order, once per process; one that throws is named with its error', async () => {
    const [a] = resolvePlugins(['a.mjs'], root, '--import');
    await loadPlugins([a!, a!], '--import');
    await loadPlugins([a!], '--import');
    assert.equal((globalThis as { attunePluginA?: number }).attunePluginA, 1);
    writeFileSync(join(root, 'bad.mjs'), "throw new Error('no such tuner\\noption');\n");
    await assert.rejects(
      loadPlugins([join(root, 'bad.mjs')], '--import'),
      (e: Error) =>
        e instanceof ConfigError &&
        e.message ===
          `--import: cannot load the plug-in module ${join(root, 'bad.mjs')}: no such tuner option`,
    );
    writeFileSync(join(root, 'syntax.mjs'), 'export const = 1;\n');
    await assert.rejects(
      loadPlugins([join(root, 'syntax.mjs')], '--import'),
      /--import: cannot load the plug-in module .*syntax\.mjs: /,
    );
  });
});
