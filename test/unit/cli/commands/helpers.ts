/** Running `attune ...` in-process on captured streams, for the command tests. */
import { captureIO } from '../../../../src/cli/io.ts';
import { main } from '../../../../src/cli/main.ts';

export interface CliRun {
  status: number;
  stdout: string;
  stderr: string;
  /** The last stdout line parsed as JSON (undefined when it is not JSON). */
  json: Record<string, unknown> | undefined;
}

/** Run the CLI on `argv`. */
export async function attune(argv: string[]): Promise<CliRun> {
  const { io, stdout, stderr } = captureIO();
  const status = await main(argv, io);
  const last = stdout().trimEnd().split('\n').at(-1) ?? '';
  let json: Record<string, unknown> | undefined;
  try {
    json = last.startsWith('{') ? (JSON.parse(last) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { status, stdout: stdout(), stderr: stderr(), json };
}
