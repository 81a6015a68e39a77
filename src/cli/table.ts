/** Plain-text tables for results on stdout. */

/** A number for humans: 4 significant digits, no exponent for ordinary magnitudes. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return value.toFixed(0);
  if (magnitude >= 0.001) return Number(value.toPrecision(4)).toString();
  return Number(value.toPrecision(3)).toExponential();
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'number') return formatNumber(value);
  return String(value);
}

/**
 * Rows as a table: one column per key (in order of first appearance unless `columns` is given),
 * numbers right-aligned, missing values as `-`.
 */
export function formatTable(rows: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  const keys = columns ?? [...new Set(rows.flatMap((row) => Object.keys(row)))];
  if (keys.length === 0) return '';
  const cells = rows.map((row) => keys.map((key) => cell(row[key])));
  const numeric = keys.map(
    (key) => rows.length > 0 && rows.every((row) => typeof row[key] === 'number' || row[key] == null),
  );
  const widths = keys.map((key, i) => Math.max(key.length, ...cells.map((r) => r[i]!.length)));
  const render = (values: string[]) =>
    values
      .map((value, i) => (numeric[i] ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = [render([...keys]), render(widths.map((w) => '-'.repeat(w))), ...cells.map(render)];
  return `${lines.join('\n')}\n`;
}
