/**
 * The layering rule of DESIGN.md ("The stack"), checked by `npm run deps` (part of `npm test`).
 *
 * A folder of src/ imports only from folders below it. Folders on the same level are siblings and
 * do not import each other; the one exception is the CLI, which is the front end of the benchmark
 * harness (cli/ -> bench/) and of the server (cli/ -> serve/). src/errors.ts is importable by all; src/index.ts (the public API) may
 * import any layer; nothing in src/ imports src/index.ts, and nothing outside src/cli imports the
 * CLI (bin/attune.js is its only entry). Cycles that leave a folder are errors.
 */

/** Bottom-up; an inner array is one level of siblings. */
const levels = [
  ['backend', 'config'],
  ['tensor'],
  ['nn'],
  ['io'],
  ['models'],
  ['peft'],
  ['data'],
  ['train'],
  ['uq', 'merge', 'analysis'],
  ['world'],
  ['cli', 'bench', 'serve', 'sweep'],
];

/** Extra imports allowed between siblings: [from, to]. */
const siblingExceptions = [
  ['cli', 'bench'],
  ['cli', 'serve'],
  ['cli', 'sweep'],
];

const allFolders = levels.flat();

/** One rule per folder: it may not import a folder on its own level or any level above. */
const layerRules = levels.flatMap((level, index) =>
  level.map((folder) => {
    const forbidden = levels
      .slice(index)
      .flat()
      .filter((other) => other !== folder)
      .filter((other) => !siblingExceptions.some(([from, to]) => from === folder && to === other));
    return {
      name: `layer-${folder}`,
      comment: `src/${folder}/ may import only from folders below it (DESIGN.md, "The stack"): not from ${forbidden.join(', ')}`,
      severity: 'error',
      from: { path: `^src/${folder}/` },
      to: { path: `^src/(${forbidden.join('|')})/` },
    };
  }),
);

const knownModule = `^src/((${allFolders.join('|')})/|errors\\.ts$|index\\.ts$)`;

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-public-api-inside',
      comment:
        'src/index.ts is the public API for users and bin/; code inside src/ imports the module it needs directly',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^src/index\\.ts$' },
    },
    {
      name: 'no-cli-outside-cli',
      comment: 'the CLI is an application on top of the library; only bin/attune.js starts it',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'errors-is-a-leaf',
      comment: 'src/errors.ts is imported by every layer, so it imports nothing from src/',
      severity: 'error',
      from: { path: '^src/errors\\.ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'unknown-folder-from',
      comment: `every module under src/ belongs to a layer of DESIGN.md (${allFolders.join(', ')}); add a new folder to .dependency-cruiser.cjs`,
      severity: 'error',
      from: { path: '^src/', pathNot: knownModule },
      to: {},
    },
    {
      name: 'unknown-folder-to',
      comment: `every module under src/ belongs to a layer of DESIGN.md (${allFolders.join(', ')}); add a new folder to .dependency-cruiser.cjs`,
      severity: 'error',
      from: {},
      to: { path: '^src/', pathNot: knownModule },
    },
    {
      name: 'no-circular-across-folders',
      comment: 'a dependency cycle that leaves a folder of src/ breaks the layering',
      severity: 'error',
      from: { path: '^src/([^/]+)/' },
      to: { circular: true, via: { pathNot: '^src/$1/' } },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that does not resolve to a file (a typo, or a file not yet written)',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer may not even name a type from a layer above it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mjs', '.js', '.cjs', '.d.ts', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
