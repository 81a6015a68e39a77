/** Help texts: the command list (`attune --help`), a group (`attune bench --help`), one command. */
import { helpOption, kindLabel, type OptionSpec, valueNameOf } from './args.ts';
import type { Command } from './command.ts';

function pad(text: string, width: number): string {
  return text + ' '.repeat(Math.max(1, width - text.length));
}

function optionLabel(name: string, spec: OptionSpec): string {
  const short = spec.short ? `-${spec.short}, ` : '    ';
  const value = spec.type === 'boolean' ? '' : ` ${valueNameOf(spec)}`;
  return `${short}--${name}${value}`;
}

/** What --help adds after a description, once: `(integer >= 1; default: 64)`; nothing for flags. */
export function optionDetails(spec: OptionSpec): string {
  if (spec.type === 'boolean') return '';
  const parts = [kindLabel(spec)];
  if (spec.multiple) parts.push('repeatable');
  if (spec.required) parts.push('required');
  else if (spec.defaultText !== undefined) parts.push(`default: ${spec.defaultText}`);
  else if (spec.default !== undefined) parts.push(`default: ${spec.default}`);
  return ` (${parts.join('; ')})`;
}

/** The usage line of a command: `attune train <config.yaml> [options]`. */
export function usageLine(command: Command): string {
  if (command.usage) return `attune ${command.name} ${command.usage}`;
  const positionals = (command.positionals ?? []).map((p) => `<${p.name}>`);
  return ['attune', command.name, ...positionals, '[options]'].join(' ');
}

/** Help of one command: usage, arguments, description, every option with its kind and default, examples. */
export function commandHelp(command: Command): string {
  const options = { ...command.options, help: helpOption };
  const labels = Object.entries(options).map(([name, spec]) => [optionLabel(name, spec), spec] as const);
  const positionals = command.positionals ?? [];
  const width =
    Math.max(...labels.map(([label]) => label.length), ...positionals.map((p) => p.name.length + 6)) + 2;
  const lines = [`attune ${command.name}: ${command.summary}`, '', `Usage: ${usageLine(command)}`];
  if (positionals.length > 0) {
    lines.push('', 'Arguments:');
    for (const p of positionals) lines.push(`  ${pad(`<${p.name}>`, width)}${p.description}`);
  }
  if (command.description) lines.push('', command.description.trim());
  lines.push('', 'Options:');
  for (const [label, spec] of labels)
    lines.push(`  ${pad(label, width)}${spec.description}${optionDetails(spec)}`);
  if (command.examples?.length) {
    lines.push('', 'Examples:', ...command.examples.map((example) => `  ${example}`));
  }
  return `${lines.join('\n')}\n`;
}

function commandList(commands: readonly Command[]): string[] {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return commands.map((c) => `  ${pad(c.name, width)}${c.summary}`);
}

/** Help of `attune` itself: what it is and every command. */
export function mainHelp(commands: readonly Command[], version: string): string {
  const lines = [
    `attune ${version}: fine-tune pretrained transformer language models from TypeScript`,
    '',
    'Usage: attune <command> [options]',
    '',
    'Commands:',
    ...commandList(commands),
    '',
    'Options:',
    "  -h, --help     Show this help; `attune <command> --help` shows a command's options",
    '  -V, --version  Print the version',
    '',
    'Every command prints results to stdout and progress to stderr; with --json the last stdout line',
    'is one JSON object. Errors print `error: <reason>` on stderr and exit 1 (2 for usage errors).',
  ];
  return `${lines.join('\n')}\n`;
}

/** Help of a command group such as `attune bench`: its subcommands. */
export function groupHelp(group: string, commands: readonly Command[]): string {
  const lines = [
    `Usage: attune ${group} <command> [options]`,
    '',
    'Commands:',
    ...commandList(commands),
    '',
    `Run 'attune ${group} <command> --help' for a command's options.`,
  ];
  return `${lines.join('\n')}\n`;
}
