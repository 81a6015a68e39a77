/**
 * Path-valued options of registry entries. An option schema marked `.meta({ path: true })` holds a
 * file or directory path; a config loader resolves it like the config's own paths (relative to the
 * config file). Options nested in sub-objects (e.g. `corda_config.data`) are found too.
 */
import { z } from 'zod';

/** `schema` without its optional / nullable / default wrappers. */
function unwrapped(schema: z.ZodType): z.ZodType {
  let s = schema as z.ZodType & { _zod: { def: { innerType?: z.ZodType } } };
  while (s._zod.def.innerType) s = s._zod.def.innerType as typeof s;
  return s;
}

/** Whether `schema` (or one of its wrappers) is marked as a path. */
function isPath(schema: z.ZodType): boolean {
  let s = schema as z.ZodType & { _zod: { def: { innerType?: z.ZodType } } };
  for (;;) {
    if ((z.globalRegistry.get(s) as { path?: boolean } | undefined)?.path === true) return true;
    if (!s._zod.def.innerType) return false;
    s = s._zod.def.innerType as typeof s;
  }
}

/** `value` (options validated by `schema`) with every string under a path-marked option passed through `resolve`. */
export function resolveOptionPaths<T extends Record<string, unknown>>(
  value: T,
  schema: z.ZodObject,
  resolve: (path: string) => string,
): T {
  const out: Record<string, unknown> = { ...value };
  for (const [key, field] of Object.entries(schema.shape)) {
    const v = out[key];
    if (typeof v === 'string' && isPath(field as z.ZodType)) out[key] = resolve(v);
    const inner = unwrapped(field as z.ZodType);
    if (inner instanceof z.ZodObject && v !== null && typeof v === 'object' && !Array.isArray(v))
      out[key] = resolveOptionPaths(v as Record<string, unknown>, inner, resolve);
  }
  return out as T;
}
