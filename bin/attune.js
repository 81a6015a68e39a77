#!/usr/bin/env node
// The `attune` command. Attune ships TypeScript sources, so this shim registers tsx's loader and
// then runs src/cli/main.ts. Paths are resolved from this file's real location (Node follows the
// node_modules/.bin symlink for the main module), so it works from any working directory.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
// Use the project's tsconfig, never one that happens to sit in the caller's working directory.
register({ tsconfig: existsSync(tsconfig) ? tsconfig : false });

// A reader that goes away (`attune ... | head`) ends the command quietly, as for other Unix tools.
process.stdout.on('error', (err) => {
  if (err.code !== 'EPIPE') throw err;
  process.exit(process.exitCode ?? 0);
});

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
