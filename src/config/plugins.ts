/**
 * Plug-in modules: files of a user's own code that register methods, losses, experiments or job
 * kinds (docs/extending.md) when imported. `--import FILE` (attune train, bench methods, worker)
 * and a sweep's `imports: [...]` name them; the command imports them before it reads its config,
 * and an executor's job processes import the same files before their job, so a trial or bench unit
 * knows the same registrations wherever it runs. A plug-in is named by its file (a package: a
 * one-line file `import 'package';`), kept as its real absolute path, so two processes (two
 * machines with the file at the same path) name the same plug-in the same way.
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
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
        `${where}: '${spec}': expected a plug-in module file (.js, .mjs or .ts), found ${existsSync(path) ? 'a folder' : 'no file'} at ${path}`,
      );
    return realpathSync(path);
  });
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
