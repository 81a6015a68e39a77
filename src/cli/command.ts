/** What a CLI command is: a name, its help, its options and a function that runs it. */
import type { OptionsSpec, ParsedArgs, PositionalSpec } from './args.ts';
import type { CliIO } from './io.ts';

export interface Command<O extends OptionsSpec = OptionsSpec> {
  /** Words after `attune`: `doctor`, `bench gemm`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Paragraphs for `--help`, after the usage line. */
  description?: string;
  /** Usage line after `attune <name>`; defaults to the positional arguments and `[options]`. */
  usage?: string;
  /** The command's options (`--help` is added to every command). */
  options: O;
  /** The positional arguments, each required, in order (none when absent). */
  positionals?: readonly PositionalSpec[];
  /** Example invocations for `--help`. */
  examples?: string[];
  /** Run with parsed and validated arguments; resolves to the exit status. */
  run(args: ParsedArgs<O>, io: CliIO): Promise<number>;
}

/** Declare a command; typing its `run` against its own options. */
export function defineCommand<const O extends OptionsSpec>(command: Command<O>): Command<O> {
  return command;
}
