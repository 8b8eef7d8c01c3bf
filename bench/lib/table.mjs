// Plain-text tables for the terminal: right-aligned numbers, a header rule, nothing fancy so the
// output pastes cleanly into an issue or a pull request.

export function fmt(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '—'
  if (typeof x === 'string') return x
  if (Math.abs(x) >= 100) return x.toFixed(0)
  if (Math.abs(x) >= 10) return x.toFixed(Math.min(digits, 1))
  return x.toFixed(digits)
}

export const fmtRatio = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—')

/** columns: [{ title, align? }], rows: arrays of already formatted strings. */
export function renderTable(columns, rows) {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => String(r[i]).length)))
  const cell = (text, i) => {
    const s = String(text)
    return (columns[i].align ?? (i === 0 ? 'left' : 'right')) === 'left' ? s.padEnd(widths[i]) : s.padStart(widths[i])
  }
  const lines = [
    columns.map((c, i) => cell(c.title, i)).join('  '),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map((r) => r.map(cell).join('  ')),
  ]
  return lines.join('\n')
}
