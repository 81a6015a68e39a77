/**
 * What a zod schema says about itself, for "did you mean" and for generated docs: the keys allowed
 * at a path, and one row (key, type, default, description) per documented field.
 */
import type { z } from 'zod';

type AnySchema = z.ZodType & { def: Record<string, unknown> };

/** Strip default/optional/nullable/prefault/pipe wrappers. */
export function unwrapSchema(schema: z.ZodType): AnySchema {
  let s = schema as AnySchema;
  for (;;) {
    const type = s.def.type;
    if (
      (type === 'default' || type === 'optional' || type === 'nullable' || type === 'prefault') &&
      s.def.innerType
    ) {
      s = s.def.innerType as AnySchema;
    } else if (type === 'pipe' && s.def.in) {
      s = s.def.in as AnySchema;
    } else return s;
  }
}

function objectOptions(s: AnySchema): AnySchema[] {
  const u = unwrapSchema(s);
  const options = u.def.type === 'union' ? (u.def.options as AnySchema[]).map(unwrapSchema) : [u];
  return options.filter((o) => o.def.type === 'object');
}

function shapeOf(s: AnySchema): Record<string, AnySchema> {
  return (s as unknown as { shape: Record<string, AnySchema> }).shape;
}

/** The object keys `schema` allows at `path` (objects inside unions included). */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let cur: AnySchema[] = [schema as AnySchema];
  for (const p of path) {
    const next: AnySchema[] = [];
    if (typeof p === 'number') {
      // an index steps into the element schema of an array
      for (const s of cur.map(unwrapSchema))
        if (s.def.type === 'array') next.push(s.def.element as AnySchema);
    } else {
      for (const o of cur.flatMap(objectOptions)) {
        const field = shapeOf(o)[p as string];
        if (field) next.push(field);
      }
    }
    cur = next;
  }
  return [...new Set(cur.flatMap(objectOptions).flatMap((o) => Object.keys(shapeOf(o))))];
}

/** One documented field. */
export interface SchemaRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

function typeName(s: AnySchema): string {
  const u = unwrapSchema(s);
  switch (u.def.type) {
    case 'enum':
      return Object.values(u.def.entries as Record<string, string>).join(' \\| ');
    case 'literal':
      return (u.def.values as unknown[]).map((v) => JSON.stringify(v)).join(' \\| ');
    case 'union':
      return (u.def.options as AnySchema[]).map(typeName).join(' \\| ');
    case 'array':
      return `${typeName(u.def.element as AnySchema)}[]`;
    case 'tuple':
      return `[${(u.def.items as AnySchema[]).map(typeName).join(', ')}]`;
    default:
      return String(u.def.type);
  }
}

function defaultOf(s: AnySchema): string {
  let cur = s;
  for (;;) {
    if (cur.def.type === 'default' || cur.def.type === 'prefault') {
      const v = cur.def.defaultValue;
      return JSON.stringify(typeof v === 'function' ? (v as () => unknown)() : v);
    }
    if (cur.def.type === 'optional') return 'none';
    if (cur.def.type === 'nullable' && cur.def.innerType) cur = cur.def.innerType as AnySchema;
    else return 'required';
  }
}

/** Every documented field of an object schema, nested objects flattened to dotted keys. */
export function describeSchema(schema: z.ZodType, prefix = ''): SchemaRow[] {
  const rows: SchemaRow[] = [];
  const visit = (s: AnySchema, at: string) => {
    const u = unwrapSchema(s);
    if (u.def.type !== 'object') return;
    for (const [key, field] of Object.entries(shapeOf(u))) {
      const full = at ? `${at}.${key}` : key;
      const inner = unwrapSchema(field);
      const isObject = inner.def.type === 'object';
      rows.push({
        key: full,
        type: isObject ? 'object' : typeName(field),
        default: isObject ? '' : defaultOf(field),
        description: field.description ?? '',
      });
      if (isObject) visit(inner, full);
    }
  };
  visit(schema as AnySchema, prefix);
  return rows;
}
