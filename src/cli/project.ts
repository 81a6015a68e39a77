/** Where the Attune checkout or package lives, and its version. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Root folder of the Attune package (holds package.json, native/). */
export const projectRoot = fileURLToPath(new URL('../../', import.meta.url));

let version: string | null = null;

/** The version in Attune's package.json. */
export function attuneVersion(): string {
  if (version === null) {
    const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    version = manifest.version ?? 'unknown';
  }
  return version;
}
