/**
 * Where a command writes. Results go to stdout, progress and diagnostics to stderr; with `--json`
 * a command prints exactly one JSON object and it is the last stdout line (enforced here: stdout
 * written after it is an internal error).
 */

/** The raw streams a CliIO writes to (the process's, or strings in tests). */
export interface CliStreams {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is an interactive terminal (progress bars instead of periodic lines). */
  stderrIsTTY: boolean;
  env: Readonly<Record<string, string | undefined>>;
}

/** Output of one CLI invocation. */
export class CliIO {
  private jsonWritten = false;

  constructor(private readonly streams: CliStreams) {}

  /** Environment variables of the invocation. */
  get env(): Readonly<Record<string, string | undefined>> {
    return this.streams.env;
  }

  /** Whether stderr is an interactive terminal. */
  get stderrIsTTY(): boolean {
    return this.streams.stderrIsTTY;
  }

  /** Write text to stdout. */
  out(text: string): void {
    if (this.jsonWritten)
      throw new Error('internal: stdout written after the --json object, which must be last');
    this.streams.stdout(text);
  }

  /** Write one line to stdout. */
  line(text = ''): void {
    this.out(`${text}\n`);
  }

  /** Write raw text to stderr (progress bars). */
  err(text: string): void {
    this.streams.stderr(text);
  }

  /** Write one line to stderr (progress, notes, errors). */
  note(text: string): void {
    this.streams.stderr(`${text}\n`);
  }

  /** Print `value` as one JSON line on stdout; nothing may be written to stdout after it. */
  json(value: unknown): void {
    this.out(`${JSON.stringify(value)}\n`);
    this.jsonWritten = true;
  }
}

/** A CliIO on the process's stdout and stderr. */
export function processIO(): CliIO {
  return new CliIO({
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
  });
}

/** A CliIO that collects its output in strings (tests, embedding). */
export function captureIO(env: Record<string, string | undefined> = {}): {
  io: CliIO;
  stdout: () => string;
  stderr: () => string;
} {
  let stdout = '';
  let stderr = '';
  const io = new CliIO({
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    stderrIsTTY: false,
    env,
  });
  return { io, stdout: () => stdout, stderr: () => stderr };
}
