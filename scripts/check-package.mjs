#!/usr/bin/env node
// Checks the package a user gets, not the checkout: `npm pack`, then install the tarball into an
// empty temp folder the way npm does for a dependency whose install script is not allowed to run,
// and there
//   1. run the example of docs/library.md with plain `node` (on the js backend: no addon yet) and
//      check the one-line note on how to build the addon;
//   2. type-check that example (as JavaScript with checkJs and as TypeScript) and an import of every
//      `exports` subpath against the shipped .d.ts;
//   3. run the packaged `attune` command (compiled dist/, no tsx);
//   4. build the addon with `npm rebuild attune --foreground-scripts` and check that it is used.
// A file missing from `files` or `exports` fails here. Called by .ci/run after the unit tests;
// `npm run check:package` runs it by hand (--keep keeps the temp folder, --no-rebuild skips 4).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const keep = args.has('--keep');
const rebuild = !args.has('--no-rebuild');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const started = Date.now();
const work = mkdtempSync(join(tmpdir(), 'attune-package-'));

/** Files the package must ship, and path prefixes it must not. */
const REQUIRED = [
  'package.json',
  'README.md',
  'bin/attune.js',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/cli/main.js',
  'native/binding.gyp',
  'native/src/binding.cpp',
  'scripts/build-native.mjs',
  'docs/library.md',
  'world-bases/small/model.safetensors',
  'world-bases/small/base.json',
];
const FORBIDDEN = [
  'src/',
  'test/',
  'runs/',
  'test-output/',
  'node_modules/',
  'native/build',
  '.attune-cache/',
];

/** Report and exit 1 (process.exit skips the `finally` below, so the temp folder goes here). */
function fail(message) {
  console.error(`check-package: ${message}`);
  if (keep) console.error(`check-package: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
  process.exit(1);
}

/** Run a command; its output is returned (and echoed on failure). */
function run(cmd, argv, options = {}) {
  const res = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (res.status !== 0 && !options.allowFailure) {
    process.stderr.write(`${res.stdout ?? ''}${res.stderr ?? ''}`);
    fail(`\`${cmd} ${argv.join(' ')}\` failed (exit ${res.status ?? res.signal}) in ${options.cwd ?? root}`);
  }
  return res;
}

function step(text) {
  console.log(`check-package: ${text} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

/** The ```js block that follows `<!-- check-package: NAME -->` in docs/library.md. */
function docExample(name) {
  const doc = readFileSync(join(root, 'docs', 'library.md'), 'utf8');
  const marker = `<!-- check-package: ${name} -->`;
  const at = doc.indexOf(marker);
  if (at < 0) fail(`docs/library.md has no ${marker} marker before the example`);
  const block = /```js\n([\s\S]*?)```/.exec(doc.slice(at));
  if (!block) fail(`docs/library.md: no \`\`\`js block after ${marker}`);
  return block[1];
}

/**
 * The consumer's package.json and package-lock.json: the tarball plus the production entries of
 * the checkout's lockfile, so `npm ci --offline` installs exactly the versions the checkout uses
 * from npm's cache (filled by the checkout's own `npm ci`) without asking the registry.
 */
function writeConsumer(dir, tarball) {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const self = lock.packages[''];
  const spec = `file:${tarball}`;
  const packages = {
    '': { name: 'attune-consumer', dependencies: { attune: spec } },
    'node_modules/attune': {
      version: manifest.version,
      resolved: spec,
      hasInstallScript: true,
      license: manifest.license,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path && !entry.dev) packages[path] = entry;
  const pkg = { name: 'attune-consumer', private: true, type: 'module', dependencies: { attune: spec } };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  writeFileSync(
    join(dir, 'package-lock.json'),
    `${JSON.stringify({ name: pkg.name, lockfileVersion: 3, requires: true, packages }, null, 2)}\n`,
  );
}

/**
 * Environment of a consumer's process: no Attune settings inherited from CI unless given, and a
 * TMPDIR inside the work folder, so what the example writes goes when the folder does.
 */
function consumerEnv(extra = {}) {
  const env = { ...process.env };
  for (const key of Object.keys(env))
    if (key.startsWith('ATTUNE_') || key === 'NODE_OPTIONS') delete env[key];
  return { ...env, TMPDIR: join(work, 'tmp'), ...extra };
}
try {
  step('npm pack (the prepare script compiles src/ to dist/)');
  const packed = run('npm', ['pack', '--json', '--pack-destination', work], { cwd: root });
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))[0];
  const files = info.files.map((f) => f.path);
  const missing = REQUIRED.filter((f) => !files.includes(f));
  if (missing.length > 0) fail(`the tarball lacks ${missing.join(', ')} (package.json "files")`);
  const stray = files.filter((f) => FORBIDDEN.some((p) => f.startsWith(p)));
  if (stray.length > 0) fail(`the tarball ships ${stray.slice(0, 5).join(', ')} (package.json "files")`);
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    for (const file of typeof target === 'string' ? [target] : Object.values(target)) {
      if (!files.includes(file.replace(/^\.\//, '')))
        fail(`exports["${subpath}"] points to ${file}, which the tarball lacks`);
    }
  }
  const tarball = join(work, info.filename);
  console.log(
    `check-package: ${info.filename}: ${(info.size / 1024).toFixed(0)} KiB packed, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${info.entryCount} files`,
  );

  step('npm ci of the tarball into an empty folder, install scripts not run');
  const app = join(work, 'app');
  mkdirSync(app);
  mkdirSync(join(work, 'tmp'));
  writeConsumer(app, tarball);
  const npmCi = ['ci', '--ignore-scripts', '--no-audit', '--no-fund'];
  const offline = run('npm', [...npmCi, '--offline'], { cwd: app, allowFailure: true });
  if (offline.status !== 0) {
    console.log("check-package: not all dependencies are in npm's cache; asking the registry");
    run('npm', [...npmCi, '--prefer-offline'], { cwd: app });
  }
  const installed = join(app, 'node_modules', 'attune');
  if (existsSync(join(installed, 'src'))) fail('the installed package has src/');
  if (existsSync(join(installed, 'native', 'build'))) fail('native/build exists although no script ran');

  step('the docs/library.md example with plain node, js backend');
  writeFileSync(join(app, 'example.mjs'), docExample('example.mjs'));
  const onJs = run(process.execPath, ['example.mjs'], { cwd: app, env: consumerEnv() });
  console.log(onJs.stdout.trimEnd().replace(/^/gm, '  | '));
  if (!onJs.stdout.includes('backend: js')) fail('the example did not run on the js backend');
  if (!/^AUROC (\d|undefined)/m.test(onJs.stdout)) fail('the example printed no AUROC line');
  const note = onJs.stderr.split('\n').filter((l) => l.includes('native backend unavailable'));
  if (note.length !== 1 || !note[0].includes('npm rebuild [-g] attune --foreground-scripts'))
    fail(
      `expected one stderr note naming \`npm rebuild [-g] attune --foreground-scripts\`, got:\n${onJs.stderr}`,
    );

  step('type-check the example and every exports subpath against the shipped .d.ts');
  cpSync(join(app, 'example.mjs'), join(app, 'example.ts'));
  const subpaths = Object.keys(manifest.exports).filter((s) => s !== './package.json');
  writeFileSync(
    join(app, 'subpaths.ts'),
    `${subpaths.map((s, i) => `import * as m${i} from '${s.replace(/^\./, 'attune')}';`).join('\n')}\n` +
      `import { auroc, evaluate, loadModel, merge, train, type TrainConfig } from 'attune';\n` +
      `const steps: TrainConfig['train']['steps'] = 1;\n` +
      `const value: number | null = auroc([0.1, 0.9], [false, true]).value;\n` +
      `console.log(steps, value, [evaluate, loadModel, merge, train].length, ${subpaths.map((_, i) => `m${i}`).join(', ')});\n`,
  );
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        strict: true,
        noEmit: true,
        allowJs: true,
        checkJs: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
      },
      files: ['example.mjs', 'example.ts', 'subpaths.ts'],
    }),
  );
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: app,
  });

  step('the packaged attune command (dist/)');
  const bin = join(app, 'node_modules', '.bin', 'attune');
  const version = run(bin, ['--version'], { cwd: app, env: consumerEnv() }).stdout.trim();
  if (version !== manifest.version)
    fail(`attune --version printed '${version}', expected ${manifest.version}`);
  run(bin, ['inspect', '--help'], { cwd: app, env: consumerEnv() });

  if (rebuild) {
    step('npm rebuild attune --foreground-scripts (builds the native addon)');
    run('npm', ['rebuild', 'attune', '--foreground-scripts'], { cwd: app, stdio: 'inherit' });
    step('the example again, native backend required');
    const onNative = run(process.execPath, ['example.mjs'], {
      cwd: app,
      env: consumerEnv({ ATTUNE_REQUIRE_NATIVE: '1' }),
    });
    if (!onNative.stdout.includes('backend: native'))
      fail(`the example did not use the addon:\n${onNative.stdout}`);
    const doctor = JSON.parse(
      run(bin, ['doctor', '--json'], { cwd: app, env: consumerEnv() }).stdout.trim().split('\n').at(-1),
    );
    if (doctor.backend.active !== 'native') fail(`attune doctor: backend ${JSON.stringify(doctor.backend)}`);
  }
  step(`ok: ${info.filename} (${(info.size / 1024).toFixed(0)} KiB, ${info.entryCount} files)`);
} finally {
  if (keep) console.log(`check-package: kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
