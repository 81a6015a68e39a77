/**
 * The "Methods and parameters" section of docs/merge.md, generated from the merge-method registry
 * (`npm run docs`; a docs test checks it is current): per method its description and its
 * per-model and global parameters with their defaults, then each parameter's type and meaning.
 */
import { describeSchema, type SchemaRow } from '../config/schema-info.ts';
import { mergeMethods } from './method.ts';

/** The markers around the generated section in docs/merge.md. */
export const MERGE_DOCS_BEGIN = '<!-- merge methods: generated from src/merge/methods/ by `npm run docs` -->';
export const MERGE_DOCS_END = '<!-- end of generated merge methods -->';

function typeOf(row: SchemaRow): string {
  // mergekit settings: a number, a gradient over the layers or [{filter, value}] conditions
  return row.type.startsWith('number \\| number[] \\| object') ? 'number or setting' : row.type;
}

function withDefault(row: SchemaRow): string {
  if (row.default === 'required' || row.description.startsWith('required'))
    return `\`${row.key}\` (required)`;
  if (row.default === 'none') return `\`${row.key}\``;
  return `\`${row.key}\` ${row.default.replace(/^"(.*)"$/, '$1')}`;
}

/** The generated section (between the markers, which it includes). */
export function renderMergeMethodDocs(): string {
  const methods = mergeMethods.list();
  const rows = methods.map((m) => {
    const options = describeSchema(m.options);
    const perModel = options.filter((o) => m.modelParameters.includes(o.key));
    const global = options.filter((o) => !m.modelParameters.includes(o.key));
    const base = m.usesBase ? 'required' : 'optional (layout only)';
    const list = (rs: SchemaRow[]) => rs.map(withDefault).join(', ') || '—';
    return `| \`${m.name}\` | ${m.description} | ${base} | ${list(perModel)} | ${list(global)} |`;
  });
  const parameters = new Map<string, SchemaRow>();
  for (const m of methods)
    for (const o of describeSchema(m.options)) if (!parameters.has(o.key)) parameters.set(o.key, o);
  const parameterRows = [...parameters.values()]
    .sort((a, b) => a.key.localeCompare(b.key))
    .map((p) => `| \`${p.key}\` | ${typeOf(p)} | ${p.description} |`);
  return `${MERGE_DOCS_BEGIN}

Defaults follow each name (mergekit's where mergekit has the method). Per-model parameters may also be
set in the global \`parameters\` as defaults for every model.

| method | what it does | \`base_model\` | per-model parameters | global parameters |
|---|---|---|---|---|
${rows.join('\n')}

| parameter | type | meaning |
|---|---|---|
${parameterRows.join('\n')}

${MERGE_DOCS_END}`;
}

/** `text` (docs/merge.md) with its generated section replaced by the current one. */
export function updateMergeDocs(text: string): string {
  const begin = text.indexOf(MERGE_DOCS_BEGIN);
  const end = text.indexOf(MERGE_DOCS_END);
  if (begin < 0 || end < begin)
    throw new Error(`docs/merge.md: the markers ${MERGE_DOCS_BEGIN} ... are missing`);
  return text.slice(0, begin) + renderMergeMethodDocs() + text.slice(end + MERGE_DOCS_END.length);
}
