/** `--import FILE`: the plug-in modules a command imports before it reads its config (config/plugins.ts). */
import { loadPlugins, resolvePlugins } from '../config/plugins.ts';

/**
 * Import the plug-in files of `--import` (relative to the working directory), in order; their real
 * absolute paths, for the job processes of an executor. A missing file or one that cannot be loaded
 * is a one-line error naming it.
 */
export async function importPlugins(files: readonly string[]): Promise<string[]> {
  const paths = resolvePlugins(files, process.cwd(), '--import');
  await loadPlugins(paths, '--import');
  return paths;
}
