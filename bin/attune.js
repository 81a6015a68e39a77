#!/usr/bin/env node
// The `attune` command. Which code it runs:
// - in a checkout (src/ next to bin/), the TypeScript sources through tsx's loader, so an edit to
//   src/ takes effect at once and a stale dist/ is never run by accident; ATTUNE_USE_DIST=1 runs
//   the compiled dist/ instead (what the package runs);
// - in an installed package (no src/: `files` ships dist/ only), the compiled dist/cli/main.js.
// Paths are resolved from this file's real location (Node follows the node_modules/.bin symlink
// for the main module), so it works from any working directory.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const path = (relative) => fileURLToPath(new URL(relative, import.meta.url));
const sourceMain = path('../src/cli/main.ts');
const compiledMain = path('../dist/cli/main.js');

/** The CLI's main(), from the sources (tsx) or from dist/. */
async function loadMain() {
  if (process.env.ATTUNE_USE_DIST !== '1' && existsSync(sourceMain)) {
    let register;
    try {
      ({ register } = await import('tsx/esm/api'));
    } catch {
      process.stderr.write(
        `attune: ${sourceMain} needs tsx, a devDependency: run \`npm ci\` in the checkout (or ATTUNE_USE_DIST=1 to run dist/)\n`,
      );
      process.exit(1);
    }
    const tsconfig = path('../tsconfig.json');
    // Use the project's tsconfig, never one that happens to sit in the caller's working directory.
    register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });
    return (await import(pathToFileURL(sourceMain).href)).main;
  }
  if (!existsSync(compiledMain)) {
    process.stderr.write(`attune: ${compiledMain} is missing: run \`npm run build\` (or \`npm ci\`) first\n`);
    process.exit(1);
  }
  return (await import(pathToFileURL(compiledMain).href)).main;
}

// A reader that goes away (`attune ... | head`) ends the command quietly, as for other Unix tools.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

const main = await loadMain();
process.exitCode = await main(process.argv.slice(2));
