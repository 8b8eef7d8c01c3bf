// Turns the collected rounds into the printed tables and the JSON written to bench/results/.
import { ratio } from './stats.mjs'
import { fmt, fmtRatio, renderTable } from './table.mjs'
import { TARGETS } from './workloads.mjs'

const BASE = 'ssh2'
const UNDER_TEST = 'ferrossh'
const FLOOR = 'Rust floor'

/** Every summary metric of every peer divided by ssh2's (and ferrossh's by the Rust floor's). */
export function ratios(specs, results) {
  const vsSsh2 = {}
  const ferrosshVsFloor = {}
  for (const [name, spec] of Object.entries(specs)) {
    const peers = results[name] ?? {}
    const base = peers[BASE]?.summary
    vsSsh2[name] = {}
    for (const [label, r] of Object.entries(peers)) {
      if (!r.summary) continue
      vsSsh2[name][label] = Object.fromEntries(spec.metrics.map((m) => [m.key, ratio(r.summary[m.key], base?.[m.key])]))
    }
    const f = peers[UNDER_TEST]?.summary
    const floor = peers[FLOOR]?.summary
    if (f && floor) ferrosshVsFloor[name] = Object.fromEntries(spec.metrics.map((m) => [m.key, ratio(f[m.key], floor[m.key])]))
  }
  return { vsSsh2, ferrosshVsFloor }
}

export function targetChecks(results) {
  const checks = {}
  for (const [name, list] of Object.entries(TARGETS)) {
    const peers = results[name]
    const f = peers?.[UNDER_TEST]?.summary
    if (!f) continue
    checks[name] = list.map(([what, key, other, otherKey, factor, op]) => {
      const o = peers[other]?.summary?.[otherKey]
      const limit = Number.isFinite(o) ? o * factor : NaN
      const value = f[key]
      const pass = Number.isFinite(limit) && Number.isFinite(value) ? (op === 'le' ? value <= limit : value >= limit) : null
      return { target: what, value, limit, pass }
    })
  }
  return checks
}

export function renderWorkload(name, spec, peerOrder, results, skipped, rounds, notMeasured = {}) {
  const peers = results[name] ?? {}
  const base = peers[BASE]?.summary
  const columns = [{ title: 'peer' }]
  for (const m of spec.metrics) columns.push({ title: m.title }, { title: '× ssh2' })
  const rows = []
  const notes = new Set()
  for (const label of peerOrder) {
    const r = peers[label]
    if (skipped[label]) {
      rows.push([label, ...spec.metrics.flatMap(() => ['skipped', ''])])
      continue
    }
    if (notMeasured[label]) {
      rows.push([label, ...spec.metrics.flatMap(() => ['n/a', ''])])
      notes.add(`${label}: not measured — ${notMeasured[label]}`)
      continue
    }
    if (!r?.summary) {
      rows.push([label, ...spec.metrics.flatMap(() => ['error', ''])])
      continue
    }
    rows.push([
      label,
      ...spec.metrics.flatMap((m) => [fmt(r.summary[m.key]), label === BASE ? '' : fmtRatio(ratio(r.summary[m.key], base?.[m.key]))]),
    ])
    if (r.note) notes.add(`${label}: ${r.note}`)
    if (r.errors?.length) notes.add(`${label}: ${r.errors.length} of ${rounds} rounds failed; median of the rest`)
  }
  const out = [`${spec.title} — median of ${rounds} round${rounds === 1 ? '' : 's'}`, renderTable(columns, rows)]
  const f = peers[UNDER_TEST]?.summary
  const floor = peers[FLOOR]?.summary
  if (f && floor) {
    out.push(`binding overhead, ferrossh / Rust floor: ${spec.metrics.map((m) => `${m.title} ${fmtRatio(ratio(f[m.key], floor[m.key]))}`).join(', ')}`)
  }
  const checks = targetChecks(results)[name]
  if (checks) {
    out.push(`targets (DESIGN.md): ${checks.map((c) => `${c.target} ${c.pass === null ? '?' : c.pass ? 'met' : 'MISSED'}`).join('; ')}`)
  }
  for (const n of notes) out.push(`  note — ${n}`)
  return out.join('\n')
}
