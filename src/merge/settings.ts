/**
 * Parameter settings as mergekit writes them (config.py `ParameterSetting`): a scalar, a gradient
 * (a list of numbers interpolated over the layers), or conditions `{filter, value}` whose first
 * match on the tensor name wins (`filter` is a substring of the name; absent or `*` matches all).
 *
 * A gradient is read at the tensor's position `t` in [0, 1]: layer i of L has t = i / (L - 1)
 * (t = 1 when L = 1), the embeddings (before the layers) t = 0 and the tensors after the layers
 * (final norm, LM head) t = 1 — mergekit's planner (plan.py) does the same.
 */

/** One condition of a conditional setting. */
export interface ConditionalSetting {
  filter?: string | null;
  value: number | number[];
}

/** A parameter value: scalar, gradient, one condition, or a list of conditions. */
export type Setting = number | boolean | string | number[] | ConditionalSetting | ConditionalSetting[];

/** Whether a setting is a plain scalar (the same for every tensor). */
export function isScalarSetting(setting: Setting): setting is number | boolean | string {
  return typeof setting === 'number' || typeof setting === 'boolean' || typeof setting === 'string';
}

/** A gradient read at `t` in [0, 1]: linear interpolation between neighbouring entries. */
export function interpolateGradient(values: readonly number[], t: number): number {
  if (values.length === 1) return values[0]!;
  const scaled = t * (values.length - 1);
  const i0 = Math.floor(scaled);
  const i1 = Math.min(values.length - 1, i0 + 1);
  const frac = scaled - i0;
  return (1 - frac) * values[i0]! + frac * values[i1]!;
}

function matches(filter: string | null | undefined, tensorName: string): boolean {
  return filter === undefined || filter === null || filter === '*' || tensorName.includes(filter);
}

/**
 * The value of `setting` for the tensor `tensorName` at layer position `t`; undefined when it is a
 * conditional setting none of whose filters matches (the lookup then falls back to the next level).
 */
export function evaluateSetting(
  setting: Setting,
  tensorName: string,
  t: number,
): number | boolean | string | undefined {
  if (isScalarSetting(setting)) return setting;
  if (Array.isArray(setting)) {
    if (setting.every((v) => typeof v === 'number')) return interpolateGradient(setting as number[], t);
    for (const condition of setting as ConditionalSetting[]) {
      if (matches(condition.filter, tensorName)) return evaluateSetting(condition.value, tensorName, t);
    }
    return undefined;
  }
  return matches(setting.filter, tensorName) ? evaluateSetting(setting.value, tensorName, t) : undefined;
}

/** Every number a numeric setting can evaluate to (gradient entries, condition values), for range checks. */
export function settingNumbers(setting: Setting): number[] {
  if (typeof setting === 'number') return [setting];
  if (typeof setting === 'boolean' || typeof setting === 'string') return [];
  if (Array.isArray(setting)) {
    return (setting as (number | ConditionalSetting)[]).flatMap((s) =>
      typeof s === 'number' ? [s] : settingNumbers(s.value),
    );
  }
  return settingNumbers(setting.value);
}

const LAYER = /(?:^|\.)layers\.(\d+)\./;

/** The layer index in a tensor name (`model.layers.3.mlp.up_proj.weight` -> 3), or null. */
export function layerIndexOf(name: string): number | null {
  const m = LAYER.exec(name);
  return m ? Number(m[1]) : null;
}

/** The position `t` of a tensor for gradients (see the file comment). */
export function tensorPosition(name: string, numLayers: number): number {
  const layer = layerIndexOf(name);
  if (layer !== null) return numLayers > 1 ? Math.min(1, layer / (numLayers - 1)) : 1;
  return name.includes('embed_tokens') ? 0 : 1;
}
