/**
 * Plug-in modules: files of a user's own code that register methods, losses, experiments or job
 * kinds (docs/extending.md) when imported. `--import FILE` (attune train, bench methods, worker)
 * and a sweep's `imports: [...]` name them; the command imports them before it reads its config,
 * and an executor's job processes import the same files before their job, so a trial or bench unit
 * knows the same registrations wherever it runs. A plug-in is named by its file (a package: a
 * one-line file `import 'package';`), kept as its real absolute path, so two processes (two
 * machines with the file at the same path) name the same plug-in the same way. A plug-in must be an
 * ES module: one that loads as CommonJS would (under tsx, as a checkout runs) get a copy of
 * Attune's modules of its own, and what it registers there no command would see.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.ts';

/**
 * The real absolute path of each plug-in file of `specs` (relative ones against `baseDir`), or a
 * ConfigError naming `where`, the spec and the file that is not there.
 */
export function resolvePlugins(specs: readonly string[], baseDir: string, where: string): string[] {
  return specs.map((spec) => {
    const path = isAbsolute(spec) ? spec : resolve(baseDir, spec);
    if (!existsSync(path) || !statSync(path).isFile())
      throw new ConfigError(
        `${where}: '${spec}': expected a plug-in module file (.mjs, .mts, or .js, .ts in a "type": "module" package), found ${existsSync(path) ? 'a folder' : 'no file'} at ${path}`,
      );
    const real = realpathSync(path);
    const why = notEsModule(real);
    if (why)
      throw new ConfigError(
        `${where}: '${spec}': expected an ES module, found ${why}: what it registers would land in a copy of Attune's registries of its own (name it .mjs or .mts, or give its package.json "type": "module")`,
      );
    return real;
  });
}

/** Why the file at `path` would not load as an ES module (Node's rules), or null when it would. */
function notEsModule(path: string): string | null {
  const ext = extname(path);
  if (ext === '.mjs' || ext === '.mts') return null;
  if (ext === '.cjs' || ext === '.cts') return `a CommonJS file (${ext})`;
  if (ext !== '.js' && ext !== '.ts') return `a '${ext}' file (expected .js, .mjs, .ts or .mts)`;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      let type: unknown;
      try {
        type = (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: unknown }).type;
      } catch {
        return `a ${ext} file whose ${pkg} cannot be read as JSON`;
      }
      return type === 'module'
        ? null
        : `a ${ext} file that loads as CommonJS (${pkg} has no "type": "module")`;
    }
    if (dirname(dir) === dir) return `a ${ext} file that loads as CommonJS (no package.json above it)`;
  }
}

/**
 * Import each plug-in file of `paths` (from resolvePlugins), in order, once per process (Node's
 * module cache); one that cannot be loaded is a ConfigError naming `where`, the file and why.
 */
export async function loadPlugins(paths: readonly string[], where: string): Promise<void> {
  for (const path of paths) {
    try {
      await import(pathToFileURL(path).href);
    } catch (error) {
      const message = ((error as Error).message ?? String(error)).replace(/\s*\n\s*/g, ' ');
      throw new ConfigError(`${where}: cannot load the plug-in module ${path}: ${message}`);
    }
  }
}
