/**
 * `attune <command> [options]`: finds the command in the registry, handles --help and --version,
 * parses options strictly and turns errors into one `error: <reason>` line on stderr with exit
 * status 2 (usage) or 1 (anything else). bin/attune.js calls `main(process.argv.slice(2))`.
 */
import { AttuneError, UsageError } from '../errors.ts';
import { parseOptions, wantsHelp } from './args.ts';
import type { Command } from './command.ts';
import { commands as registry } from './commands/index.ts';
import { commandHelp, groupHelp, mainHelp } from './help.ts';
import { type CliIO, processIO } from './io.ts';
import { attuneVersion } from './project.ts';
import { closest } from './suggest.ts';

/** Run the CLI on `argv` (the words after `attune`); resolves to the exit status. */
export async function main(
  argv: readonly string[],
  io: CliIO = processIO(),
  commands = registry,
): Promise<number> {
  try {
    return await dispatch(argv, io, commands);
  } catch (err) {
    return reportError(err, io);
  }
}

/**
 * The command `argv` names and the arguments after its name, or the group it names (`bench`) when
 * it names no command. An unknown command is a UsageError suggesting the closest one.
 */
export function resolveCommand(
  argv: readonly string[],
  commands: readonly Command[],
): { command: Command; rest: string[] } | { group: string; subcommands: Command[]; rest: string[] } {
  const longest = Math.max(...commands.map((c) => c.name.split(' ').length));
  for (let words = Math.min(longest, argv.length); words >= 1; words--) {
    const name = argv.slice(0, words).join(' ');
    const command = commands.find((c) => c.name === name);
    if (command) return { command, rest: argv.slice(words) };
  }
  const first = argv[0]!;
  const subcommands = commands.filter((c) => c.name.startsWith(`${first} `));
  if (subcommands.length > 0) {
    const next = argv[1];
    if (next !== undefined && !next.startsWith('-')) {
      const names = subcommands.map((c) => c.name.slice(first.length + 1));
      const match = closest(next, names);
      const hint = match ? `did you mean 'attune ${first} ${match}'?` : `see 'attune ${first} --help'`;
      throw new UsageError(`unknown command 'attune ${first} ${next}' (${hint})`);
    }
    return { group: first, subcommands, rest: argv.slice(1) };
  }
  const topWords = [...new Set(commands.map((c) => c.name.split(' ')[0]!))];
  const match = first.startsWith('-') ? null : closest(first, topWords);
  const hint = match ? `did you mean 'attune ${match}'?` : "see 'attune --help'";
  if (first.startsWith('-')) throw new UsageError(`unknown option '${first}' for 'attune' (${hint})`);
  throw new UsageError(`unknown command '${first}' (${hint})`);
}

async function dispatch(argv: readonly string[], io: CliIO, commands: readonly Command[]): Promise<number> {
  const first = argv[0];
  if (first === undefined || first === '--help' || first === '-h') {
    io.out(mainHelp(commands, attuneVersion()));
    return 0;
  }
  if (first === '--version' || first === '-V') {
    io.line(attuneVersion());
    return 0;
  }
  const resolved = resolveCommand(argv, commands);
  if ('group' in resolved) {
    if (wantsHelp(resolved.rest)) {
      io.out(groupHelp(resolved.group, resolved.subcommands));
      return 0;
    }
    const names = resolved.subcommands.map((c) => c.name.slice(resolved.group.length + 1)).join(', ');
    throw new UsageError(
      `'attune ${resolved.group}' needs a command: ${names} (see 'attune ${resolved.group} --help')`,
    );
  }
  const { command, rest } = resolved;
  if (wantsHelp(rest)) {
    io.out(commandHelp(command));
    return 0;
  }
  const args = parseOptions(rest, command.options, `attune ${command.name}`, command.positionals ?? false);
  for (const note of args.notes) io.note(note);
  return command.run(args, io);
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Print `err` as one `error: <message>` line on stderr and return the exit status: 2 for usage
 * errors, 1 otherwise. AttuneErrors are expected (no stack); anything else also says how to get
 * the stack, which ATTUNE_DEBUG=1 prints.
 */
export function reportError(err: unknown, io: CliIO): number {
  const debug = io.env.ATTUNE_DEBUG === '1';
  const message = oneLine(err instanceof Error ? err.message : String(err)) || 'unknown error';
  const expected = err instanceof AttuneError;
  io.note(`error: ${message}${expected || debug ? '' : ' (set ATTUNE_DEBUG=1 for the stack)'}`);
  if (debug && err instanceof Error && err.stack) io.note(err.stack);
  return err instanceof UsageError ? 2 : 1;
}
