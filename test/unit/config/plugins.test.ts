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
          `sweep.yaml: imports: 'nope.ts': expected a plug-in module file (.mjs, .mts, or .js, .ts in a "type": "module" package), found no file at ${join(root, 'nope.ts')}`,
    );
    assert.throws(() => resolvePlugins(['dir'], root, '--import'), /--import: 'dir': .*found a folder at/);
  });

  it('must be ES modules: a file that would load as CommonJS (its own copy of the registries) is refused', () => {
    // a package.json without "type": "module": .js and .ts there are CommonJS
    const cjs = join(root, 'cjs-package');
    mkdirSync(cjs);
    writeFileSync(join(cjs, 'package.json'), '{"name": "p"}\n');
    for (const [file, found] of [
      [
        'plain.ts',
        /a \.ts file that loads as CommonJS \(.*cjs-package\/package\.json has no "type": "module"\)/,
      ],
      ['plain.js', /a \.js file that loads as CommonJS/],
      ['explicit.cjs', /a CommonJS file \(\.cjs\)/],
      ['notes.txt', /a '\.txt' file \(expected \.js, \.mjs, \.ts or \.mts\)/],
    ] as const) {
      writeFileSync(join(cjs, file), '\n');
      assert.throws(
        () => resolvePlugins([file], cjs, '--import'),
        (e: Error) =>
          e instanceof ConfigError &&
          e.message.startsWith(`--import: '${file}': expected an ES module, found `) &&
          found.test(e.message) &&
          /name it \.mjs or \.mts, or give its package\.json "type": "module"/.test(e.message),
      );
    }
    mkdirSync(join(root, 'esm-package'));
    writeFileSync(join(root, 'esm-package', 'package.json'), '{"type": "module"}\n');
    writeFileSync(join(root, 'esm-package', 'p.ts'), '\n');
    writeFileSync(join(root, 'p.mts'), '\n');
    assert.deepEqual(resolvePlugins(['esm-package/p.ts', 'p.mts'], root, '--import'), [
      join(root, 'esm-package', 'p.ts'),
      join(root, 'p.mts'),
    ]);
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
