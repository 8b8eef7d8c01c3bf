// The Rust floor: bench/rust-floor, a plain russh 0.65 client with no binding, run as its own
// binary. It measures itself (getrusage around the workload) and prints the same JSON shape.
import { existsSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { sinkCommand } from '../lib/sink.mjs'

export const label = 'Rust floor'

const root = fileURLToPath(new URL('../../', import.meta.url))
export const binary = `${root}target/release/ferrossh-rust-floor`
const source = `${root}bench/rust-floor/src/main.rs`
const BUILD = 'nice -n 10 cargo build --release -p ferrossh-rust-floor'

export function unavailableReason() {
  if (!existsSync(binary)) return `not built (run: ${BUILD})`
  return null
}

/** A warning worth printing when the binary is older than its source. */
export function staleWarning() {
  if (existsSync(binary) && statSync(source).mtimeMs > statSync(binary).mtimeMs) {
    return `target/release/ferrossh-rust-floor is older than its source; rebuild with: ${BUILD}`
  }
  return null
}

export function command(workload, p) {
  const t = p.target
  const args = [
    workload, '--host', t.host, '--port', String(t.port), '--user', t.user, '--key', t.keyPath,
    '--host-key', t.hostKeyBase64, '--cipher', t.cipher,
  ]
  if (p.bytes !== undefined) args.push('--bytes', String(p.bytes))
  if (p.count !== undefined) args.push('--count', String(p.count))
  if (p.size !== undefined) args.push('--size', String(p.size))
  if (p.chunk !== undefined) args.push('--chunk', String(p.chunk))
  if (p.warmup !== undefined) args.push('--warmup', String(p.warmup))
  if (workload === 'forward') args.push('--source-port', String(p.fixture.sourcePort), '--sink', sinkCommand)
  return { file: binary, args }
}

/** Workloads the floor does not implement (yet), with the reason shown in the table. */
export function unsupported(workload) {
  if (['connect', 'download', 'upload', 'roundtrip', 'concurrent', 'forward', 'jump', 'jump-upload', 'jump-connect'].includes(workload)) return null
  return 'not implemented in bench/rust-floor (its SFTP floors are still to write)'
}
