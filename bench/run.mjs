// npm run bench: ferrossh side by side with ssh2, the russh npm binding, the OpenSSH client and
// a pure-Rust russh client, all against one throwaway OpenSSH sshd on loopback, in one run.
//
// Every measurement runs in a fresh child process (one peer, one workload, one round) so CPU
// time and peak RSS belong to that peer alone. Peers take turns within each round, so a drift
// in the machine's load hits all of them alike. See bench/README.md for the knobs.
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { startSshd } from '../__test__/fixtures/sshd.mjs'
import { runChild, killAllChildren } from './lib/spawn.mjs'
import { serverCpuMeter, settledCpu } from './lib/server-cpu.mjs'
import { workloadSpecs, summarize } from './lib/workloads.mjs'
import { ratios, renderWorkload, targetChecks } from './lib/report.mjs'
import { prepareSftpFiles } from './lib/fixtures.mjs'
import { pumpUnavailable, startByteSource } from './lib/sink.mjs'
import { fmt } from './lib/table.mjs'
import * as ferrossh from './peers/ferrossh.mjs'
import * as ssh2 from './peers/ssh2.mjs'
import * as russh from './peers/russh.mjs'
import * as openssh from './peers/openssh.mjs'
import * as rustFloor from './peers/rust-floor.mjs'

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const env = process.env
const QUICK = env.BENCH_QUICK === '1'
const num = (name, dflt) => {
  const v = env[name]
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`)
  return n
}

const downloadMiB = num('BENCH_SIZE_MB', QUICK ? 16 : 512)
const cfg = {
  rounds: num('BENCH_ROUNDS', QUICK ? 1 : 3),
  downloadMiB,
  uploadMiB: num('BENCH_UPLOAD_MB', Math.max(1, downloadMiB / 2)),
  chunkKiB: num('BENCH_CHUNK_KB', 256),
  connectRuns: QUICK ? 5 : 20,
  roundTrips: num('BENCH_ROUND_TRIPS', QUICK ? 200 : 2000),
  messageBytes: 64,
  warmup: 20,
  concurrent: num('BENCH_CONCURRENT', QUICK ? 20 : 100),
  sftpMiB: num('BENCH_SFTP_MB', QUICK ? 16 : 256),
  forwardMiB: num('BENCH_FORWARD_MB', QUICK ? 16 : 256),
  jumpMiB: num('BENCH_JUMP_MB', QUICK ? 16 : 256),
  cipher: env.BENCH_CIPHER || 'aes128-gcm@openssh.com',
  timeoutS: num('BENCH_TIMEOUT_S', QUICK ? 60 : 300),
}

const ALL_PEERS = [ferrossh, ssh2, russh, openssh, rustFloor]
const ALL_WORKLOADS = [
  'connect', 'download', 'upload', 'roundtrip', 'concurrent',
  'sftp-download', 'sftp-upload', 'sftp-stream', 'forward', 'jump', 'jump-upload', 'jump-connect',
]
const pick = (all, list, key) => {
  if (!list) return all
  const wanted = list.split(',').map((s) => s.trim())
  const chosen = all.filter((x) => wanted.includes(key(x)))
  if (chosen.length !== wanted.length) throw new Error(`unknown name in "${list}"; choose from ${all.map(key).join(', ')}`)
  return chosen
}
const peerKey = (p) => ({ [ferrossh.label]: 'ferrossh', [ssh2.label]: 'ssh2', [russh.label]: 'russh', [openssh.label]: 'openssh', [rustFloor.label]: 'rust-floor' })[p.label]
const peers = pick(ALL_PEERS, env.BENCH_PEERS, peerKey)
const workloads = pick(ALL_WORKLOADS, env.BENCH_WORKLOADS, (w) => w)

const log = (...a) => process.stderr.write(a.join(' ') + '\n')

/** The comparison is only meaningful against ssh2 at its best, which needs its native AES-GCM. */
function requireSsh2Binding() {
  let available = false
  try {
    available = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js').bindingAvailable === true
  } catch {
    // reported below
  }
  if (available) return
  log('ssh2 is installed without its native crypto binding, so it would be measured far below its best.')
  log('Build it, then run the bench again (bench/README.md, "ssh2 native binding"):')
  log('  npm_config_nodedir=/usr npm rebuild ssh2 cpu-features --foreground-scripts')
  process.exit(1)
}

function sshVersion() {
  // `ssh -V` prints its version on stderr
  const r = spawnSync('ssh', ['-V'], { encoding: 'utf8' })
  return (r.stderr || r.stdout || '').trim() || null
}

async function main() {
  requireSsh2Binding()
  const skipped = {}
  for (const p of peers) {
    const why = p.unavailableReason()
    if (why) skipped[p.label] = why
  }
  const running = peers.filter((p) => !skipped[p.label])
  const warnings = []
  if (running.includes(rustFloor)) warnings.push(rustFloor.staleWarning())
  if (running.includes(ferrossh)) warnings.push(ferrossh.buildWarning())
  for (const [label, why] of Object.entries(skipped)) log(`skipping ${label}: ${why}`)
  // Other work on the machine shows up as millisecond stalls in every latency percentile.
  const load = loadavg()[0]
  if (load > cpus().length / 2) warnings.push(`load average ${load.toFixed(1)} on ${cpus().length} CPUs; figures will be noisy`)
  for (const w of warnings.filter(Boolean)) log(`warning: ${w}`)

  const specs = workloadSpecs(cfg)
  const chosenSpecs = Object.fromEntries(workloads.map((w) => [w, specs[w]]))
  const sshd = await startSshd({
    config: [
      `Ciphers ${['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com'].join(',')}`,
      'MaxSessions 100',
    ],
  })
  // the server's CPU per run (forward and jump tables): what bounds a transfer on this box
  const serverCpu = serverCpuMeter(sshd.pid)
  if (serverCpu.reason) log(`sshd CPU not measured: ${serverCpu.reason}`)
  // undoes the SFTP file and the forward's byte source (below), also on Ctrl-C
  const cleanups = []
  const stopAll = async () => {
    killAllChildren()
    for (const c of cleanups.splice(0)) await Promise.resolve().then(c).catch(() => {})
    await sshd.stop().catch(() => {})
    serverCpu.remove?.()
  }
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      log(`\n${sig}: stopping children and sshd`)
      stopAll().finally(() => process.exit(130))
    })
  }

  const target = {
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    keyPath: sshd.userKey.path,
    knownHostsFile: sshd.knownHostsFile,
    hostKeyBase64: sshd.hostKeys.ed25519.publicKey.split(' ')[1],
    cipher: cfg.cipher,
  }
  // A peer may sit a workload out (peer.unsupported(name) gives the reason), or measure it in
  // several variants, each its own row (peer.variants(name): [{ label, variant }]).
  const notMeasured = {}
  const rowsOf = (name, peer) => peer.variants?.(name) ?? [{ label: peer.label, variant: null }]
  for (const name of workloads) {
    notMeasured[name] = {}
    for (const peer of running) {
      const why = peer.unsupported?.(name)
      if (why) notMeasured[name][peer.label] = why
    }
  }
  const results = {}
  const errors = []
  const fixture = { home: sshd.home }
  try {
    if (workloads.some((w) => w.startsWith('sftp-'))) {
      log(`\nwriting the ${cfg.sftpMiB} MiB SFTP test file to ${sshd.home}`)
      const files = prepareSftpFiles(sshd.home, cfg.sftpMiB * 1024 * 1024)
      cleanups.push(() => files.remove())
      Object.assign(fixture, { sftpFile: files.sftpFile, localDir: files.localDir })
    }
    if (workloads.includes('forward')) {
      const why = pumpUnavailable()
      if (why) throw new Error(`the forward workload needs its byte source and sink: ${why}`)
      const source = await startByteSource(cfg.forwardMiB * 1024 * 1024)
      cleanups.push(() => source.close())
      fixture.sourcePort = source.port
    }
    for (const name of workloads) {
      const spec = specs[name]
      const pad = Math.max(12, ...running.flatMap((p) => rowsOf(name, p).map((r) => r.label.length)))
      results[name] = {}
      log(`\n${spec.title}`)
      for (const [label, why] of Object.entries(notMeasured[name])) log(`  ${label.padEnd(pad)} not measured: ${why}`)
      for (let round = 1; round <= cfg.rounds; round++) {
        for (const peer of running.filter((p) => !notMeasured[name][p.label])) {
          for (const { label, variant } of rowsOf(name, peer)) {
            const params = { ...spec.params, target, fixture, variant }
            const cmd = peer.command
              ? peer.command(name, params)
              : { file: process.execPath, args: [here('./lib/child.mjs'), peerKey(peer), name, JSON.stringify(params)] }
            const serverCpu0 = serverCpu.cpuS?.()
            const { result, error } = await runChild(cmd.file, cmd.args, { timeoutMs: cfg.timeoutS * 1000 })
            // sessions that end with the child may still be tearing down: let them finish
            if (result && serverCpu0 !== undefined) result.serverCpuS = await settledCpu(serverCpu) - serverCpu0
            const slot = (results[name][label] ??= { rounds: [], errors: [] })
            if (error) {
              slot.errors.push(error)
              errors.push({ workload: name, peer: label, round, error })
              log(`  round ${round}  ${label.padEnd(pad)} ERROR ${error}`)
              continue
            }
            slot.rounds.push(result)
            if (result.note) slot.note = result.note
            const m = spec.reduce(result)
            log(`  round ${round}  ${label.padEnd(pad)} ${spec.metrics.map((x) => `${x.title} ${fmt(m[x.key])}`).join('  ')}`)
          }
        }
      }
      for (const slot of Object.values(results[name])) {
        if (slot.rounds.length) slot.summary = summarize(spec, slot.rounds)
      }
    }
  } finally {
    for (const c of cleanups.splice(0)) await c()
    await sshd.stop()
    serverCpu.remove?.()
  }

  // rows of each table: every peer (skipped ones too, to say so) and its variants
  const labelsOf = (name) => peers.flatMap((p) => (skipped[p.label] || notMeasured[name][p.label] ? [p.label] : rowsOf(name, p).map((r) => r.label)))
  const header = [
    '',
    `ferrossh bench — ${cfg.cipher}, loopback OpenSSH sshd, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}${QUICK ? ' (BENCH_QUICK: small sizes, not for comparison)' : ''}`,
    'ratios are peer / ssh2: above 1× is better for MiB/s, below 1× is better for everything else',
  ]
  const tables = workloads.map((w) => renderWorkload(w, specs[w], labelsOf(w), results, skipped, cfg.rounds, notMeasured[w]))
  const footer = [
    ...warnings.filter(Boolean).map((w) => `warning: ${w}`),
    ...Object.entries(skipped).map(([label, why]) => `skipped: ${label} — ${why}`),
  ]
  process.stdout.write([...header, '', tables.join('\n\n'), '', ...footer, ''].join('\n'))

  const outDir = here('./results/')
  mkdirSync(outDir, { recursive: true })
  const pkg = JSON.parse(readFileSync(here('../package.json'), 'utf8'))
  const json = {
    meta: {
      date: new Date().toISOString(),
      quick: QUICK,
      warnings: warnings.filter(Boolean),
      config: cfg,
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryMiB: Math.round(totalmem() / 1024 / 1024),
      openssh: sshVersion(),
      versions: { ferrossh: pkg.version, ssh2: versionOf('ssh2'), russh: versionOf('russh') },
    },
    skipped,
    errors,
    workloads: Object.fromEntries(workloads.map((w) => [w, {
      title: specs[w].title,
      metrics: specs[w].metrics,
      notMeasured: notMeasured[w],
      peers: Object.fromEntries(Object.entries(results[w] ?? {}).map(([label, s]) => [label, { summary: s.summary ?? null, note: s.note, rounds: s.rounds, errors: s.errors }])),
    }])),
    ratios: ratios(chosenSpecs, results),
    targets: targetChecks(results),
  }
  writeFileSync(`${outDir}latest.json`, JSON.stringify(json, null, 2) + '\n')
  log(`\nresults written to bench/results/latest.json`)

  if (errors.length) {
    process.stdout.write(`${errors.length} run(s) failed:\n${errors.map((e) => `  ${e.workload} / ${e.peer} / round ${e.round}: ${e.error.split('\n')[0]}`).join('\n')}\n`)
    process.exitCode = 1
  }
}

function versionOf(name) {
  try {
    return JSON.parse(readFileSync(here(`../node_modules/${name}/package.json`), 'utf8')).version
  } catch {
    return null
  }
}

main().catch((e) => {
  log(e?.stack ?? String(e))
  process.exitCode = 1
})
