/**
 * Scopes: `scope(fn)` releases, when fn returns, every tensor created inside that is neither
 * returned (anywhere inside the returned value: a tensor, an array, or a plain object of them) nor
 * passed to `keep()`. Tensors still needed by the autograd tape survive until `backward()` frees the
 * tape (the tape holds its own reference). Scopes nest; what a scope returns is handed to its parent.
 */

/** What a scope needs to know about a tensor. */
export interface Releasable {
  /** Drop one owner reference; frees the buffer when none remain. */
  release(): void;
  /** True once the buffer went back to the pool. */
  readonly isReleased: boolean;
}

type Frame = Set<Releasable>;
const frames: Frame[] = [];

/** Register a newly created tensor with the innermost scope (no-op outside any scope). */
export function track(t: Releasable): void {
  const frame = frames[frames.length - 1];
  if (frame) frame.add(t);
}

/** Exempt `t` from the innermost scope's cleanup: the caller now owns it (and should dispose it). */
export function keep<T extends Releasable>(t: T): T {
  for (let i = frames.length - 1; i >= 0; i--) {
    if (frames[i]!.delete(t)) break;
  }
  return t;
}

function collect(value: unknown, into: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if (isReleasable(value)) {
    into.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collect(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype || value instanceof Map) {
    const values = value instanceof Map ? value.values() : Object.values(value);
    for (const v of values) collect(v, into, depth + 1);
  }
}

function isReleasable(v: object): v is Releasable {
  return typeof (v as Releasable).release === 'function' && 'isReleased' in v;
}

/** Run `fn`, then release the tensors it created that are not in its result. */
export function scope<T>(fn: () => T): T {
  const frame: Frame = new Set();
  frames.push(frame);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    frames.pop();
    for (const t of frame) t.release();
    throw err;
  }
  frames.pop();
  if (result instanceof Promise) {
    throw new Error(
      'scope(fn): fn returned a Promise; scopes are synchronous (await inside, then scope the sync part)',
    );
  }
  const escaping = new Set<unknown>();
  collect(result, escaping);
  const parent = frames[frames.length - 1];
  for (const t of frame) {
    if (escaping.has(t)) parent?.add(t);
    else t.release();
  }
  return result;
}

/**
 * Low-level frame control for the autograd engine: open a frame that collects every tensor created
 * until it is closed; the caller releases them itself.
 */
export function openFrame(): Set<Releasable> {
  const frame: Frame = new Set();
  frames.push(frame);
  return frame;
}

/** Close a frame opened by `openFrame` (must be the innermost). */
export function closeFrame(frame: Set<Releasable>): void {
  if (frames[frames.length - 1] !== frame) throw new Error('closeFrame: frame is not the innermost scope');
  frames.pop();
}

/** Number of open scopes (for tests and diagnostics). */
export function scopeDepth(): number {
  return frames.length;
}
