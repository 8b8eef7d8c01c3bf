// Order statistics used by every table. Percentiles use the nearest-rank method so a p99 of
// 2000 samples is an observed value, not an interpolation between two.

export function percentile(values, p) {
  if (!values.length) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

export const median = (values) => {
  const v = values.filter((x) => Number.isFinite(x))
  if (!v.length) return NaN
  const s = [...v].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** a / b, or NaN when either side is missing, so a skipped peer never shows a ratio. */
export const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN)
