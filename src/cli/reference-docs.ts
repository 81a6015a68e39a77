/** docs/cli-reference.md: every command's --help, generated (`npm run docs`) so it never drifts. */
import { commands } from './commands/index.ts';
import { commandHelp } from './help.ts';

/** The Markdown page with the help of every command. */
export function renderCliReference(): string {
  const sections = commands.map(
    (c) => `## \`attune ${c.name}\`\n\n\`\`\`\n${commandHelp(c).trimEnd()}\n\`\`\`\n`,
  );
  return `# \`attune\` command reference

Generated from the commands' own help (\`npm run docs\`); conventions shared by every command are in
[cli.md](cli.md).

${sections.join('\n')}`;
}
