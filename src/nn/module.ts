/**
 * Module: a node of a model tree with explicitly registered children, parameters and buffers.
 *
 * A subclass registers what it owns in its constructor and keeps a typed property for use in
 * `forward`:
 *
 *   this.q_proj = this.registerModule('q_proj', new Linear(d, d, { rng }));
 *   this.weight = this.registerParameter('weight', Parameter.full([d], 1));
 *
 * Registered names joined by '.' give the Hugging Face Hub names
 * (`model.layers.0.self_attn.q_proj.weight`), so loading a checkpoint is a name lookup.
 * `forward` signatures differ per module and are documented on each class.
 */
import { AttuneError, TensorMismatchError } from '../errors.ts';
import { type ComputePrecision, type DType, formatShape, type Tensor } from '../tensor/index.ts';
import { Parameter } from './parameter.ts';

/** One entry of a state that does not fit a module. */
export interface StateMismatch {
  name: string;
  expectedShape: readonly number[];
  expectedDtype: DType;
  foundShape: readonly number[];
  foundDtype: DType;
  /** Why it does not fit (shape, dtype, released). */
  reason: string;
}

export interface LoadStateOptions {
  /** Missing or unexpected names are an error (default true); mis-shaped entries always are. */
  strict?: boolean;
  /** Allow f32/f64/bf16 conversion on load (default false: a dtype difference is a mismatch). */
  convertDtype?: boolean;
}

export interface LoadStateResult {
  /** Names the module has but the state lacks (not loaded). */
  missing: string[];
  /** Names the state has but the module lacks (ignored). */
  unexpected: string[];
}

/** `loadStateDict` refused a state; nothing was loaded. */
export class StateDictError extends TensorMismatchError {
  constructor(
    readonly missing: readonly string[],
    readonly unexpected: readonly string[],
    readonly mismatched: readonly StateMismatch[],
    message: string,
  ) {
    super(message);
  }
}

/** A registration or lookup that names nothing or the wrong kind of thing. */
export class ModuleError extends AttuneError {}

const LIST_LIMIT = 20;

function listNames(names: readonly string[], describe: (n: string) => string): string {
  const shown = names.slice(0, LIST_LIMIT).map(describe);
  if (names.length > LIST_LIMIT) shown.push(`... and ${names.length - LIST_LIMIT} more`);
  return shown.join(', ');
}

function checkLocalName(name: string, kind: string, owner: Module): void {
  if (name === '' || name.includes('.')) {
    throw new ModuleError(
      `${owner.constructor.name}: ${kind} name '${name}' must be non-empty and contain no '.'`,
    );
  }
}

function describeTensor(t: Tensor): string {
  return `${formatShape(t.shape)} ${t.dtype}`;
}

interface BufferEntry {
  tensor: Tensor | null;
  persistent: boolean;
}

/** Base class of every layer and model. */
export class Module {
  /** Training mode (dropout active); set through `train()` / `eval()`. */
  training = true;
  private readonly _parameters = new Map<string, Parameter | null>();
  private readonly _buffers = new Map<string, BufferEntry>();
  private readonly _modules = new Map<string, Module | null>();

  /**
   * Register (or replace) a parameter under a local name; null reserves the name (e.g. an
   * absent bias). Returns the parameter so it can be stored in a typed property.
   */
  registerParameter<P extends Parameter | null>(name: string, param: P): P {
    checkLocalName(name, 'parameter', this);
    if (param !== null && !(param instanceof Parameter)) {
      throw new ModuleError(`${this.constructor.name}.registerParameter('${name}'): expected a Parameter`);
    }
    if (this._modules.has(name) || this._buffers.has(name)) {
      throw new ModuleError(
        `${this.constructor.name}: '${name}' is already registered as a module or buffer`,
      );
    }
    this._parameters.set(name, param);
    return param;
  }

  /**
   * Register (or replace) a child module under a local name (null reserves the name). Returns the
   * module so it can be stored in a typed property.
   */
  registerModule<M extends Module | null>(name: string, module: M): M {
    checkLocalName(name, 'module', this);
    if (module !== null && !(module instanceof Module)) {
      throw new ModuleError(`${this.constructor.name}.registerModule('${name}'): expected a Module`);
    }
    if (this._parameters.has(name) || this._buffers.has(name)) {
      throw new ModuleError(
        `${this.constructor.name}: '${name}' is already registered as a parameter or buffer`,
      );
    }
    this._modules.set(name, module);
    return module;
  }

  /**
   * Register (or replace) a non-trainable tensor the module owns (create it with
   * `{ track: false }`). Persistent buffers are part of `stateDict()`; others (caches such as
   * RoPE tables) are not.
   */
  registerBuffer<T extends Tensor | null>(
    name: string,
    tensor: T,
    options: { persistent?: boolean } = {},
  ): T {
    checkLocalName(name, 'buffer', this);
    if (this._parameters.has(name) || this._modules.has(name)) {
      throw new ModuleError(
        `${this.constructor.name}: '${name}' is already registered as a parameter or module`,
      );
    }
    this._buffers.set(name, { tensor, persistent: options.persistent ?? true });
    return tensor;
  }

  /** Direct children as [localName, module] (null slots skipped). */
  namedChildren(): [string, Module][] {
    const out: [string, Module][] = [];
    for (const [name, m] of this._modules) if (m) out.push([name, m]);
    return out;
  }

  /** This module ('' name) and every descendant, depth first, each module once. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (m: Module, name: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [local, child] of m.namedChildren()) visit(child, name ? `${name}.${local}` : local);
    };
    visit(this, prefix);
    return out;
  }

  /** Every module in the tree (this one first). */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Every parameter with its dotted name, in registration order; a parameter registered twice
   * (tied weights) is listed once, under its first name.
   */
  namedParameters(prefix = ''): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    const seen = new Set<Parameter>();
    for (const [modName, m] of this.namedModules(prefix)) {
      for (const [local, p] of m._parameters) {
        if (!p || seen.has(p)) continue;
        seen.add(p);
        out.push([modName ? `${modName}.${local}` : local, p]);
      }
    }
    return out;
  }

  /** Every parameter (each once). */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Parameters with `requiresGrad`, with their dotted names. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.namedParameters().filter(([, p]) => p.requiresGrad);
  }

  /** Parameters with `requiresGrad` (what an optimizer should update). */
  trainableParameters(): Parameter[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /** Every buffer with its dotted name (persistent or not). */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [modName, m] of this.namedModules(prefix)) {
      for (const [local, b] of m._buffers)
        if (b.tensor) out.push([modName ? `${modName}.${local}` : local, b.tensor]);
    }
    return out;
  }

  /** Number of parameter elements (tied parameters counted once). */
  numParameters(options: { trainableOnly?: boolean } = {}): number {
    const ps = options.trainableOnly ? this.trainableParameters() : this.parameters();
    return ps.reduce((n, p) => n + p.size, 0);
  }

  /** Set training mode on this module and every descendant. Returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Inference mode: `train(false)`. Returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Set the compute precision of every GEMM-backed layer in the tree (Linear, Conv1D, tuner
   * layers, a model's LM head): 'bf16' runs their matrix products with bf16 inputs and f32
   * accumulation (`precision: bf16-mixed`), 'f32' in plain f32. Layers pinned to a precision (LoRA's
   * small A / B) keep it. Returns this.
   */
  setComputePrecision(precision: ComputePrecision): this {
    if (precision !== 'f32' && precision !== 'bf16')
      throw new ModuleError(`setComputePrecision: expected 'f32' or 'bf16', found '${String(precision)}'`);
    for (const m of this.modules()) m.applyComputePrecision(precision);
    return this;
  }

  /** What `setComputePrecision` sets on this module alone (modules without a GEMM: nothing). */
  protected applyComputePrecision(_precision: ComputePrecision): void {}

  /** Mark every parameter frozen (`requiresGrad = false`). Returns this. */
  freeze(): this {
    for (const p of this.parameters()) p.freeze();
    return this;
  }

  /** Mark every f32/f64 parameter trainable. Returns this. */
  unfreeze(): this {
    for (const p of this.parameters()) if (p.dtype === 'f32' || p.dtype === 'f64') p.unfreeze();
    return this;
  }

  /**
   * Parameters and persistent buffers by dotted name, in registration order (per module: its
   * parameters, its buffers, then its children). Tied parameters appear under every name. The
   * values are the live tensors, not copies: clone them to snapshot.
   */
  stateDict(prefix = ''): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, name: string): void => {
      const full = (local: string): string => (name ? `${name}.${local}` : local);
      for (const [local, p] of m._parameters) if (p) out.set(full(local), p);
      for (const [local, b] of m._buffers) if (b.tensor && b.persistent) out.set(full(local), b.tensor);
      for (const [local, child] of m._modules) if (child) visit(child, full(local));
    };
    visit(this, prefix);
    return out;
  }

  /**
   * Copy a state (dotted name -> tensor) into this module's parameters and persistent buffers.
   * Everything is validated first; on any error nothing is modified and a `StateDictError` lists
   * the missing, unexpected and mis-shaped entries. A shape or dtype mismatch is always an error;
   * missing / unexpected names only when `strict` (default), else they are returned.
   */
  loadStateDict(state: ReadonlyMap<string, Tensor>, options: LoadStateOptions = {}): LoadStateResult {
    const strict = options.strict ?? true;
    const convert = options.convertDtype ?? false;
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !state.has(k));
    const unexpected = [...state.keys()].filter((k) => !own.has(k));
    const mismatched: StateMismatch[] = [];
    for (const [name, dst] of own) {
      const src = state.get(name);
      if (!src) continue;
      let reason = '';
      if (src.isReleased) reason = 'the source tensor was released';
      else if (src.shape.length !== dst.shape.length || src.shape.some((d, i) => d !== dst.shape[i]))
        reason = 'shape';
      else if (src.dtype !== dst.dtype) {
        const floats = src.dtype !== 'i32' && dst.dtype !== 'i32';
        if (!convert || !floats) reason = 'dtype';
      }
      if (reason) {
        mismatched.push({
          name,
          expectedShape: dst.shape,
          expectedDtype: dst.dtype,
          foundShape: src.shape,
          foundDtype: src.dtype,
          reason,
        });
      }
    }
    const strictFailure = strict && (missing.length > 0 || unexpected.length > 0);
    if (mismatched.length > 0 || strictFailure) {
      const lines = [
        `loadStateDict: cannot load the state into ${this.constructor.name}; nothing was loaded`,
      ];
      if (missing.length > 0) {
        lines.push(
          `  missing (${missing.length}): ${listNames(missing, (n) => `${n} ${describeTensor(own.get(n)!)}`)}`,
        );
      }
      if (unexpected.length > 0) {
        lines.push(
          `  unexpected (${unexpected.length}): ${listNames(unexpected, (n) => {
            const t = state.get(n)!;
            return t.isReleased ? `${n} (released)` : `${n} ${describeTensor(t)}`;
          })}`,
        );
      }
      if (mismatched.length > 0) {
        const byName = new Map(mismatched.map((m) => [m.name, m]));
        lines.push(
          `  mis-shaped (${mismatched.length}): ${listNames(
            mismatched.map((m) => m.name),
            (n) => {
              const m = byName.get(n)!;
              const found =
                m.reason === 'the source tensor was released'
                  ? m.reason
                  : `found ${formatShape(m.foundShape)} ${m.foundDtype}`;
              return `${n}: expected ${formatShape(m.expectedShape)} ${m.expectedDtype}, ${found}`;
            },
          )}`,
        );
      }
      if (strictFailure && mismatched.length === 0) {
        lines.push('  (pass { strict: false } to load the matching entries and ignore the rest)');
      }
      throw new StateDictError(missing, unexpected, mismatched, lines.join('\n'));
    }
    for (const [name, dst] of own) {
      const src = state.get(name);
      if (!src || src === dst) continue;
      if (dst instanceof Parameter) dst.copyFrom(src, convert);
      else copyInto(dst, src, convert);
    }
    return { missing, unexpected };
  }

  /** The descendant at a dotted path ('' is this module); throws naming the path when absent. */
  getSubmodule(path: string): Module {
    if (path === '') return this;
    let cur: Module = this;
    for (const part of path.split('.')) {
      const next = cur._modules.get(part);
      if (!next)
        throw new ModuleError(`${this.constructor.name}: no submodule '${path}' (no child '${part}')`);
      cur = next;
    }
    return cur;
  }

  /** The parameter at a dotted path; throws naming the path when absent. */
  getParameter(path: string): Parameter {
    const dot = path.lastIndexOf('.');
    const owner = this.getSubmodule(dot < 0 ? '' : path.slice(0, dot));
    const p = owner._parameters.get(path.slice(dot + 1));
    if (!p) throw new ModuleError(`${this.constructor.name}: no parameter '${path}'`);
    return p;
  }

  /**
   * Replace the registered module at a dotted path (how tuners wrap layers). Own properties of the
   * parent that referenced the old module are pointed at the new one, so `forward` uses it.
   */
  setSubmodule(path: string, module: Module): void {
    const dot = path.lastIndexOf('.');
    // the owner does the replacement itself, so subclasses (ModuleList) can keep their own state
    if (dot >= 0) {
      const parent = this.getSubmodule(path.slice(0, dot));
      const local = path.slice(dot + 1);
      if (!parent._modules.has(local))
        throw new ModuleError(`${this.constructor.name}: no submodule '${path}' to replace`);
      parent.setSubmodule(local, module);
      return;
    }
    if (!(module instanceof Module))
      throw new ModuleError(`${this.constructor.name}.setSubmodule('${path}'): expected a Module`);
    const old = this._modules.get(path);
    if (old === undefined)
      throw new ModuleError(`${this.constructor.name}: no submodule '${path}' to replace`);
    this._modules.set(path, module);
    replaceProperty(this, old, module);
  }

  /**
   * Replace the registered parameter at a dotted path (tying weights, swapping dtypes). Own
   * properties of the owner that referenced the old parameter are pointed at the new one.
   */
  setParameter(path: string, param: Parameter): void {
    const dot = path.lastIndexOf('.');
    if (dot >= 0) {
      const owner = this.getSubmodule(path.slice(0, dot));
      const local = path.slice(dot + 1);
      if (!owner._parameters.has(local))
        throw new ModuleError(`${this.constructor.name}: no parameter '${path}' to replace`);
      owner.setParameter(local, param);
      return;
    }
    if (!(param instanceof Parameter))
      throw new ModuleError(`${this.constructor.name}.setParameter('${path}'): expected a Parameter`);
    if (!this._parameters.has(path))
      throw new ModuleError(`${this.constructor.name}: no parameter '${path}' to replace`);
    const old = this._parameters.get(path);
    this._parameters.set(path, param);
    replaceProperty(this, old, param);
  }

  /** Multi-line tree of module names and classes (for debugging). */
  toString(): string {
    return this.namedModules()
      .map(
        ([name, m]) =>
          `${'  '.repeat(name ? name.split('.').length : 0)}${name || '(root)'}: ${m.constructor.name}`,
      )
      .join('\n');
  }
}

function replaceProperty(owner: object, old: unknown, replacement: unknown): void {
  if (old === null || old === undefined) return;
  const rec = owner as Record<string, unknown>;
  for (const key of Object.keys(rec)) if (rec[key] === old) rec[key] = replacement;
}

function copyInto(dst: Tensor, src: Tensor, convert: boolean): void {
  // buffers are plain tensors: reuse Parameter's conversion logic through a temporary view
  const view = new Parameter(dst.data, dst.shape, { requiresGrad: false });
  view.copyFrom(src, convert);
}

/** An indexed list of modules, registered as '0', '1', ... (e.g. `model.layers.0`). */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];

  /** A list holding `modules` in order. */
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Add a module at the end (registered under its index). Returns this. */
  append(module: M): this {
    this.registerModule(String(this.items.length), module);
    this.items.push(module);
    return this;
  }

  /** The module at index i (throws when out of range). */
  at(i: number): M {
    const m = this.items[i];
    if (!m) throw new ModuleError(`ModuleList: index ${i} is out of range (length ${this.items.length})`);
    return m;
  }

  /** Number of modules in the list. */
  get length(): number {
    return this.items.length;
  }

  /** The modules in order. */
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  /** Keeps the item array in step when a tuner replaces an entry. */
  override setSubmodule(path: string, module: Module): void {
    super.setSubmodule(path, module);
    const index = Number(path);
    if (Number.isInteger(index) && index >= 0 && index < this.items.length) this.items[index] = module as M;
  }
}
