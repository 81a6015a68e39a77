/**
 * Typed, actionable errors: what was expected, what was found, where (file, line, tensor) and,
 * when known, what to do. The CLI prints `error: <message>` on one line and exits non-zero.
 */
export class AttuneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A file that does not have the expected format or content. */
export class FormatError extends AttuneError {
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
  }
}

/** A configuration value (config.json, YAML, CLI flag) that is invalid or unsupported. */
export class ConfigError extends AttuneError {}

/** A record of a data file that cannot be used. */
export class DataError extends AttuneError {
  constructor(
    readonly file: string,
    readonly line: number,
    detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
  }
}

/** A tensor with the wrong name, shape or dtype. */
export class TensorMismatchError extends AttuneError {}

/** Bad command-line usage (the CLI shows the command's help hint). */
export class UsageError extends AttuneError {}
