/**
 * Atomic writes, the one mechanism every writer uses (files, streamed safetensors, checkpoint
 * directories): write to a temporary sibling of the destination, fsync it, rename it over the
 * destination, fsync the folder. A reader sees either the old file (or folder) or the complete new
 * one, never a partial write; when writing fails the temporary is removed and an existing
 * destination is left untouched.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The temporary name used while writing `path`: `<path>.tmp-<pid>-<random>` in the same folder. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

/**
 * A file being written atomically, for writers that stream (e.g. a merge writing tensor after
 * tensor): write to `fd`, then `commit()` (fsync, rename over `path`) or `abort()` (remove the
 * temporary; `path` untouched). Both are idempotent once one of them has run.
 */
export class AtomicFile {
  /** The temporary file's descriptor while open. */
  readonly fd: number;
  private readonly temp: string;
  private open = true;

  /** Start writing `path` (nothing at `path` changes until `commit`). */
  constructor(readonly path: string) {
    this.temp = tempPathFor(path);
    this.fd = openSync(this.temp, 'wx', 0o644);
  }

  /** fsync, close and rename the temporary over `path`; on failure the temporary is removed. */
  commit(): void {
    if (!this.open) throw new Error(`${this.path}: commit() after commit() or abort()`);
    this.open = false;
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
      renameSync(this.temp, this.path);
    } catch (error) {
      rmSync(this.temp, { force: true });
      throw error;
    }
    fsyncDir(dirname(this.path));
  }

  /** Close and remove the temporary (no-op after commit or abort). */
  abort(): void {
    if (!this.open) return;
    this.open = false;
    try {
      closeSync(this.fd);
    } catch {
      // already failing: the original error is the one to report
    }
    rmSync(this.temp, { force: true });
  }
}

/**
 * Write `path` atomically: `write(fd)` fills a fresh temporary file, which is then fsynced and
 * renamed over `path` (the folder is fsynced too where the platform allows). If `write` throws, the
 * temporary file is removed, `path` is untouched and the error propagates.
 */
export function writeFileAtomic(path: string, write: (fd: number) => void): void {
  const file = new AtomicFile(path);
  try {
    write(file.fd);
  } catch (error) {
    file.abort();
    throw error;
  }
  file.commit();
}

/**
 * Create the folder `path` atomically: `fill(tmp)` writes its files into a fresh temporary sibling
 * folder, which is then fsynced and renamed over `path` (an existing `path` is replaced only once
 * the new folder is complete). If `fill` throws, the temporary folder is removed and `path` is
 * untouched.
 */
export function writeDirAtomic(path: string, fill: (tmp: string) => void): void {
  const tmp = tempPathFor(path);
  mkdirSync(tmp);
  try {
    fill(tmp);
    fsyncDir(tmp);
    rmSync(path, { recursive: true, force: true });
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
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
export function fsyncDir(dir: string): void {
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
