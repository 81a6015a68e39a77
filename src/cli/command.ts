/** What a CLI command is: a name, its help, its options and a function that runs it. */
import type { OptionsSpec, ParsedArgs } from './args.ts';
import type { CliIO } from './io.ts';

export interface Command<O extends OptionsSpec = OptionsSpec> {
  /** Words after `attune`: `doctor`, `bench gemm`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Paragraphs for `--help`, after the usage line. */
  description?: string;
  /** Usage line after `attune <name>`; defaults to `[options]`. */
  usage?: string;
  /** The command's options (`--help` is added to every command). */
  options: O;
  /** Whether positional arguments are accepted (described in `usage`). */
  allowPositionals?: boolean;
  /** Example invocations for `--help`. */
  examples?: string[];
  /** Run with parsed arguments; resolves to the exit status. */
  run(args: ParsedArgs<O>, io: CliIO): Promise<number>;
}

/** Declare a command; typing its `run` against its own options. */
export function defineCommand<O extends OptionsSpec>(command: Command<O>): Command<O> {
  return command;
}
