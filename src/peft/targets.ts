/**
 * Which modules a tuner adapts, with PEFT's `target_modules` semantics:
 *
 * - a list matches a module whose dotted name equals an entry or ends with `.` + entry
 *   (`['q_proj']` matches `model.layers.0.self_attn.q_proj`);
 * - a string is a regular expression that must match the whole name (Python's `re.fullmatch`), so
 *   `'q_proj'` as a string matches only a module named exactly `q_proj`, while `'.*q_proj'` matches
 *   every q_proj;
 * - `'all-linear'` (any case) is every Linear module, and every GPT-2 `Conv1D` (as PEFT's
 *   `(nn.Linear, Conv1D)`), except the output layer (the LM head).
 *
 * `exclude_modules` uses the same list / regex rules. `layers_to_transform` (an index or a list) keeps,
 * of the modules a list matched by suffix, those in the given layers: the layer index is the first
 * number after a `.`-separated component (`layers_pattern`, e.g. `'layers'` or `'h'`, names that
 * component; PEFT's check_target_module_exists); a name equal to a list entry is always kept, and a
 * module with no layer index is dropped. Names are the Hub's module paths, the same
 * names PEFT matches against, so a config written for PEFT selects the same modules here.
 */
import { ConfigError } from '../errors.ts';
import { Conv1D, Linear, type Module } from '../nn/index.ts';
import type { Tensor } from '../tensor/index.ts';

/** PEFT's `target_modules` / `exclude_modules`: names (suffix match) or one full-match regex. */
export type TargetModules = readonly string[] | string;

/** PEFT's shorthand for every linear layer but the output layer. */
export const ALL_LINEAR = 'all-linear';

/** A module a tuner put in the tree (LoraLinear, ...): it sets `isTunerLayer = true`. */
export interface TunerLayer {
  readonly isTunerLayer: true;
}

/** Whether `module` is a layer a tuner put in the tree (PEFT's BaseTunerLayer). */
export function isTunerLayer(module: Module): boolean {
  return (module as Partial<TunerLayer>).isTunerLayer === true;
}

/** A model that can say which matrix its LM head applies (every CausalLM does). */
interface WithLmHead {
  lmHeadWeight?: () => Tensor;
}

/** Whether `m` is a linear layer in PEFT's sense: a Linear, or transformers' Conv1D (GPT-2). */
export function isLinearLayer(m: Module): m is Linear | Conv1D {
  return m instanceof Linear || m instanceof Conv1D;
}

/** Whether `targets` is PEFT's `'all-linear'` shorthand (case-insensitive, as PEFT). */
export function isAllLinear(targets: TargetModules | null | undefined): boolean {
  return typeof targets === 'string' && targets.toLowerCase() === ALL_LINEAR;
}

/**
 * A JavaScript RegExp that full-matches what Python's `re.fullmatch(pattern, name)` matches for
 * the patterns PEFT configs use (Python's named groups `(?P<n>...)` are translated). Throws a
 * ConfigError naming `what` for an invalid pattern.
 */
export function fullMatchRegex(pattern: string, what = 'target_modules'): RegExp {
  const js = pattern.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(`^(?:${js})$`);
  } catch (error) {
    throw new ConfigError(
      `${what}: '${pattern}' is not a valid regular expression (${(error as Error).message}); a string is a regex that must match the whole module name, a list matches names by suffix`,
    );
  }
}

/**
 * Whether the module `name` matches `targets` under PEFT's rules (list: equal or `.`-suffix;
 * string: full-match regex). `'all-linear'` is not special here: use `selectTargetModules`.
 */
export function matchesTargetModules(name: string, targets: TargetModules, what = 'target_modules'): boolean {
  if (typeof targets === 'string') return fullMatchRegex(targets, what).test(name);
  return targets.some((t) => name === t || name.endsWith(`.${t}`));
}

/**
 * Dotted names of the model's output layer(s): a Linear named `lm_head` or whose weight is the
 * matrix the model's LM head applies. Empty when the head is tied to the embedding (not a Linear).
 */
export function outputLayerNames(model: Module): Set<string> {
  const headWeight = (model as unknown as WithLmHead).lmHeadWeight?.();
  const out = new Set<string>();
  for (const [name, m] of model.namedModules()) {
    if (!(m instanceof Linear)) continue;
    if (name === 'lm_head' || name.endsWith('.lm_head') || (headWeight && m.weight === headWeight))
      out.add(name);
  }
  return out;
}

/** Distinct last name components of the model's Linear / Conv1D modules, output layer excluded, sorted. */
export function linearModuleSuffixes(model: Module): string[] {
  const head = outputLayerNames(model);
  const names = new Set<string>();
  for (const [name, m] of model.namedModules()) {
    if (isLinearLayer(m) && name !== '' && !head.has(name)) names.add(name.slice(name.lastIndexOf('.') + 1));
  }
  return [...names].sort();
}

function describeTargets(targets: TargetModules): string {
  return typeof targets === 'string' ? `'${targets}'` : `[${targets.map((t) => `'${t}'`).join(', ')}]`;
}

/** A few Linear module names of the model, for error messages. */
function linearExamples(model: Module): string {
  const examples: string[] = [];
  for (const [name, m] of model.namedModules()) {
    if (isLinearLayer(m) && name !== '') examples.push(name);
    if (examples.length === 3) break;
  }
  const suffixes = linearModuleSuffixes(model);
  return `its Linear modules are named like ${examples.join(', ') || '(none)'} (names ending in ${suffixes.join(', ') || '(none)'})`;
}

export interface SelectTargetsOptions {
  /** PEFT's `exclude_modules`: modules matching it are skipped (same list / regex rules). */
  exclude?: TargetModules | null;
  /**
   * Module classes a matched module must be (default: Linear). A matched module of another class
   * is an error, as in PEFT ("Target module ... is not supported").
   */
  supported?: readonly (abstract new (
    ...args: never[]
  ) => Module)[];
  /**
   * Modules inside which nothing may be targeted (layers a tuner already wrapped). Default:
   * modules marked as tuner layers (`isTunerLayer`, see `isTunerLayer`).
   */
  wrapped?: (module: Module) => boolean;
  /** The tuner's name, for error messages. */
  method?: string;
  /** PEFT's `layers_to_transform`: only these layer indices (list targets only; null = all). */
  layersToTransform?: number | readonly number[] | null;
  /** PEFT's `layers_pattern`: the name(s) of the layer list component (null = any component). */
  layersPattern?: string | readonly string[] | null;
  /** Return an empty selection instead of throwing when nothing matches (the caller adapts something else, e.g. a tied LM head). */
  allowNoMatch?: boolean;
}

/**
 * The layer index PEFT reads from a module name: the number after the first `<component>.` (or
 * the first `<pattern>.` for one of `layersPattern`), as `re.match(r".*?\.[^.]*\.(\d+)\.", name)`;
 * null when there is none.
 */
export function peftLayerIndex(
  name: string,
  layersPattern: string | readonly string[] | null = null,
): number | null {
  const patterns =
    layersPattern === null || layersPattern.length === 0
      ? ['[^.]*']
      : typeof layersPattern === 'string'
        ? [layersPattern]
        : layersPattern;
  for (const p of patterns) {
    const m = new RegExp(`^.*?\\.(?:${p})\\.(\\d+)\\.`).exec(name);
    if (m) return Number(m[1]);
  }
  return null;
}

/**
 * Check PEFT's rules for `layers_to_transform` / `layers_pattern` (LoraConfig.__post_init__): a
 * non-negative integer or a list of them; only with a list of target modules; `layers_pattern`
 * only together with `layers_to_transform`. Throws a ConfigError naming the field.
 */
export function checkLayerSelection(
  targets: TargetModules,
  layersToTransform: unknown,
  layersPattern: unknown,
  method = 'tuner',
): void {
  const isIndex = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (
    layersToTransform !== null &&
    layersToTransform !== undefined &&
    !isIndex(layersToTransform) &&
    !(Array.isArray(layersToTransform) && layersToTransform.every(isIndex))
  ) {
    throw new ConfigError(
      `${method}: layers_to_transform must be a layer index (integer >= 0) or a list of them, found ${JSON.stringify(layersToTransform)}`,
    );
  }
  const hasPattern =
    layersPattern !== null &&
    layersPattern !== undefined &&
    !(typeof layersPattern === 'string' && layersPattern === '') &&
    !(Array.isArray(layersPattern) && layersPattern.length === 0);
  if (
    layersPattern !== null &&
    layersPattern !== undefined &&
    typeof layersPattern !== 'string' &&
    !(Array.isArray(layersPattern) && layersPattern.every((p) => typeof p === 'string'))
  ) {
    throw new ConfigError(
      `${method}: layers_pattern must be a name (e.g. 'layers', 'h') or a list of names, found ${JSON.stringify(layersPattern)}`,
    );
  }
  if (typeof targets === 'string' && (layersToTransform ?? null) !== null) {
    throw new ConfigError(
      `${method}: layers_to_transform cannot be used when target_modules is a string ('${targets}'), as in PEFT; give target_modules as a list of names`,
    );
  }
  if (typeof targets === 'string' && (layersPattern ?? null) !== null) {
    throw new ConfigError(
      `${method}: layers_pattern cannot be used when target_modules is a string ('${targets}'), as in PEFT`,
    );
  }
  if (hasPattern && (layersToTransform ?? null) === null) {
    throw new ConfigError(
      `${method}: layers_pattern is set, so layers_to_transform must be set too (as in PEFT)`,
    );
  }
}

/** What `selectTargetModules` found. */
export interface SelectedTargets<M extends Module = Linear> {
  /** Matched modules in tree order, with their dotted names. */
  modules: [string, M][];
  /**
   * The `target_modules` value to save: `'all-linear'` expanded to the sorted last name
   * components of the matched modules (as PEFT saves it), otherwise the input unchanged.
   */
  saved: string[] | string;
}

/**
 * The modules of `model` that `targets` selects (PEFT semantics, see the file comment), each of
 * a supported class. Throws a ConfigError when nothing matches (listing module names that exist),
 * when a match is not a supported class, or when it is inside an already adapted module.
 */
export function selectTargetModules<M extends Module = Linear>(
  model: Module,
  targets: TargetModules,
  options: SelectTargetsOptions = {},
): SelectedTargets<M> {
  const method = options.method ?? 'tuner';
  const supported = options.supported ?? [Linear];
  if (
    typeof targets !== 'string' &&
    (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string'))
  ) {
    throw new ConfigError(`${method}: target_modules must be a list of module names or one regex string`);
  }
  if (typeof targets !== 'string' && targets.length === 0) {
    throw new ConfigError(
      `${method}: target_modules is an empty list; name the modules to adapt (e.g. ['q_proj', 'v_proj'])`,
    );
  }
  const allLinear = isAllLinear(targets);
  const head = allLinear ? outputLayerNames(model) : new Set<string>();
  const regex = typeof targets === 'string' && !allLinear ? fullMatchRegex(targets) : null;
  const exclude = options.exclude ?? null;
  const excludeRegex = typeof exclude === 'string' ? fullMatchRegex(exclude, 'exclude_modules') : null;
  const wrappedPrefixes: string[] = [];
  const modules: [string, M][] = [];
  for (const [name, m] of model.namedModules()) {
    if (name === '') continue;
    const inside = wrappedPrefixes.find((p) => name.startsWith(`${p}.`));
    let hit: boolean;
    if (allLinear) hit = isLinearLayer(m) && !head.has(name);
    else if (regex) hit = regex.test(name);
    else {
      const list = targets as readonly string[];
      hit = list.includes(name);
      if (!hit) {
        hit = list.some((t) => name.endsWith(`.${t}`));
        const layers = options.layersToTransform ?? null;
        const using = layers !== null && (typeof layers === 'number' || layers.length > 0);
        if (hit && using) {
          const index = peftLayerIndex(name, options.layersPattern ?? null);
          hit = index !== null && (typeof layers === 'number' ? index === layers : layers.includes(index));
        }
      }
    }
    if (hit && exclude !== null) {
      const excluded = excludeRegex
        ? excludeRegex.test(name)
        : (exclude as readonly string[]).some((t) => name === t || name.endsWith(`.${t}`));
      if (excluded) hit = false;
    }
    const isWrapped = (options.wrapped ?? isTunerLayer)(m);
    if (isWrapped) wrappedPrefixes.push(name);
    if (!hit) continue;
    if (inside !== undefined || isWrapped) {
      // all-linear quietly skips the internals of adapted layers; explicit targets are an error
      if (allLinear && inside !== undefined) continue;
      throw new ConfigError(
        `${method}: target module '${name}' is ${isWrapped ? 'already adapted' : `inside the adapted module '${inside}'`} (${m.constructor.name}); merge and unload the existing adapter first`,
      );
    }
    if (!supported.some((cls) => m instanceof cls)) {
      throw new ConfigError(
        `${method}: target_modules ${describeTargets(targets)} matched '${name}', a ${m.constructor.name}; only ${supported.map((c) => c.name).join(', ')} modules can be adapted (${linearExamples(model)})`,
      );
    }
    modules.push([name, m as M]);
  }
  if (modules.length === 0 && !options.allowNoMatch) {
    const adapted =
      wrappedPrefixes.length > 0
        ? ` (${wrappedPrefixes.length} module(s) such as '${wrappedPrefixes[0]}' are already adapted; merge and unload that adapter first)`
        : '';
    throw new ConfigError(
      `${method}: target_modules ${describeTargets(targets)}${exclude !== null ? ` (excluding ${describeTargets(exclude)})` : ''} ${options.layersToTransform !== undefined && options.layersToTransform !== null ? ` in layers ${JSON.stringify(options.layersToTransform)}` : ''} matched no module of the model${adapted}; ${linearExamples(model)}. A list matches names equal to or ending in '.' + an entry; a string is a regex over the whole name`,
    );
  }
  const saved = allLinear
    ? [...new Set(modules.map(([n]) => n.slice(n.lastIndexOf('.') + 1)))].sort()
    : typeof targets === 'string'
      ? targets
      : [...new Set(targets)];
  return { modules, saved };
}
