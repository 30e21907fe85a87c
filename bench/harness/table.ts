import { targetMet, type BenchRow, type Target } from './results.js';

const OP_SYMBOL: Record<Target['op'], string> = { '>=': '≥', '<=': '≤', '<': '<', '>': '>' };

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const digits = Number.isInteger(value) || Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 1 ? 2 : 3;
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function noteFor(row: BenchRow): string {
  const parts: string[] = [];
  if (row.target) {
    const verdict = targetMet(row.value, row.target) ? 'met' : 'NOT MET';
    parts.push(`target ${OP_SYMBOL[row.target.op]} ${formatNumber(row.target.value)}: ${verdict}`);
  }
  if (row.note) parts.push(row.note);
  return parts.join('; ');
}

/** Renders rows as a fixed-width text table (name, value, unit, note). */
export function renderTable(title: string, rows: BenchRow[]): string {
  const header = ['name', 'value', 'unit', 'note'];
  const cells = rows.map((r) => [r.name, formatNumber(r.value), r.unit, noteFor(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]): string =>
    c.map((cell, i) => (i === 1 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const withTargets = rows.filter((r) => r.target);
  const met = withTargets.filter((r) => targetMet(r.value, r.target!)).length;
  return [
    `== ${title} ==`,
    line(header),
    rule,
    ...cells.map(line),
    `targets met: ${met}/${withTargets.length}`,
  ].join('\n');
}
