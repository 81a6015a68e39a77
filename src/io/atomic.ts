/**
 * Atomic file writes: write to a temporary file in the destination's folder, fsync it, rename it
 * over the destination. A reader sees either the old file or the complete new one, never a partial
 * write; when writing fails the temporary file is removed and an existing file is left untouched.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The temporary name used while writing `path`: `<path>.tmp-<pid>-<random>` in the same folder. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * Write `path` atomically: `write(fd)` fills a fresh temporary file, which is then fsynced and
 * renamed over `path` (the folder is fsynced too where the platform allows). If `write` throws, the
 * temporary file is removed, `path` is untouched and the error propagates.
 */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const temp = tempPathFor(path);
  let fd: number | null = openSync(temp, 'wx', 0o644);
  try {
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temp, path);
  } catch (error) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already failing: the original error is the one to report
      }
    }
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDir(dirname(path));
}

/** Write all of `bytes` to `fd` (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    // Chunks of at most 1 GiB: one writeSync call is limited to about 2 GiB.
    const length = Math.min(bytes.length - offset, 2 ** 30);
    offset += writeSync(fd, bytes, offset, length);
  }
}

/** Write the UTF-8 text `text` to `path` atomically. */
export function writeTextAtomic(path: string, text: string): void {
  writeFileAtomic(path, (fd) => writeAll(fd, Buffer.from(text, 'utf8')));
}

/** fsync a folder so a rename inside it is durable (a no-op where folders cannot be opened, e.g. Windows). */
function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // Some platforms and file systems refuse fsync on a folder; the rename itself already happened.
  } finally {
    closeSync(fd);
  }
}
