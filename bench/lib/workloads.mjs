// What each workload measures and how a child's raw figures reduce to the table's metrics.
// `better` says which direction wins; ratios are always peer / ssh2.
import { median, percentile } from './stats.mjs'

const MiB = 1024 * 1024

export function workloadSpecs(cfg) {
  return {
    connect: {
      title: `a. connect + auth (ed25519) + exec \`true\`, ${cfg.connectRuns} sequential runs`,
      params: { count: cfg.connectRuns },
      metrics: [
        { key: 'p50Ms', title: 'median ms', better: 'lower' },
        { key: 'p90Ms', title: 'p90 ms', better: 'lower' },
      ],
      reduce: (r) => ({ p50Ms: percentile(r.latenciesMs, 50), p90Ms: percentile(r.latenciesMs, 90) }),
    },
    download: {
      title: `b. exec download: head -c ${cfg.downloadMiB} MiB of /dev/zero delivered to the client`,
      params: { bytes: cfg.downloadMiB * MiB },
      metrics: [
        { key: 'mibps', title: 'MiB/s', better: 'higher' },
        { key: 'cpuS', title: 'CPU s', better: 'lower' },
        { key: 'loopP99Ms', title: 'loop p99 ms', better: 'lower' },
      ],
      reduce: (r) => ({ mibps: r.bytes / MiB / r.wallS, cpuS: r.cpuS, loopP99Ms: r.loopP99Ms }),
    },
    upload: {
      title: `c. exec upload: ${cfg.uploadMiB} MiB through stdin into \`cat > /dev/null\` (${cfg.chunkKiB} KiB writes)`,
      params: { bytes: cfg.uploadMiB * MiB, chunk: cfg.chunkKiB * 1024 },
      metrics: [
        { key: 'mibps', title: 'MiB/s', better: 'higher' },
        { key: 'cpuS', title: 'CPU s', better: 'lower' },
        { key: 'loopP99Ms', title: 'loop p99 ms', better: 'lower' },
      ],
      reduce: (r) => ({ mibps: r.bytes / MiB / r.wallS, cpuS: r.cpuS, loopP99Ms: r.loopP99Ms }),
    },
    roundtrip: {
      title: `d. interactive round trips: ${cfg.roundTrips} × ${cfg.messageBytes}-byte messages through remote \`cat\``,
      params: { count: cfg.roundTrips, size: cfg.messageBytes, warmup: cfg.warmup },
      metrics: [
        { key: 'p50Us', title: 'p50 µs', better: 'lower' },
        { key: 'p99Us', title: 'p99 µs', better: 'lower' },
        { key: 'cpuS', title: 'CPU s', better: 'lower' },
      ],
      reduce: (r) => ({ p50Us: percentile(r.latenciesUs, 50), p99Us: percentile(r.latenciesUs, 99), cpuS: r.cpuS }),
    },
    concurrent: {
      title: `e. ${cfg.concurrent} concurrent connections, each exec \`true\``,
      params: { count: cfg.concurrent },
      metrics: [
        { key: 'wallS', title: 'wall s', better: 'lower' },
        { key: 'peakRssMiB', title: 'peak RSS MiB', better: 'lower' },
        { key: 'deltaRssMiB', title: 'Δ RSS MiB', better: 'lower' },
        { key: 'deltaAnonMiB', title: 'Δ private MiB', better: 'lower' },
        { key: 'firstMiB', title: 'first conn MiB', better: 'lower' },
        { key: 'cpuS', title: 'CPU s', better: 'lower' },
      ],
      reduce: (r) => ({
        wallS: r.wallS,
        // the warm-up connection before the baseline: code paged in, runtime started, first session
        firstMiB: r.rssColdKb === undefined ? undefined : (r.rssBeforeKb - r.rssColdKb) / 1024,
        peakRssMiB: r.maxRssKb / 1024,
        deltaRssMiB: (r.maxRssKb - r.rssBeforeKb) / 1024,
        // RSS without mapped-file pages (code), after every connection is up; library peers only
        deltaAnonMiB: r.anonAfterKb === undefined || r.anonBeforeKb === undefined ? undefined : (r.anonAfterKb - r.anonBeforeKb) / 1024,
        cpuS: r.cpuS,
      }),
    },
    'sftp-download': {
      title: `f. SFTP download: a ${cfg.sftpMiB} MiB file, remote path → local path`,
      params: { bytes: cfg.sftpMiB * MiB },
      metrics: TRANSFER_METRICS,
      reduce: transfer,
    },
    'sftp-upload': {
      title: `g. SFTP upload: a ${cfg.sftpMiB} MiB file, local path → remote path`,
      params: { bytes: cfg.sftpMiB * MiB },
      metrics: TRANSFER_METRICS,
      reduce: transfer,
    },
    'sftp-stream': {
      title: `h. SFTP read stream: a ${cfg.sftpMiB} MiB file through createReadStream, bytes counted in a Writable`,
      params: { bytes: cfg.sftpMiB * MiB },
      metrics: [...TRANSFER_METRICS, { key: 'loopP99Ms', title: 'loop p99 ms', better: 'lower' }],
      reduce: (r) => ({ ...transfer(r), loopP99Ms: r.loopP99Ms }),
    },
    forward: {
      title: `i. local port forward: ${cfg.forwardMiB} MiB from a TCP server, through the forward, to a TCP client (separate processes)`,
      params: { bytes: cfg.forwardMiB * MiB },
      metrics: [...TRANSFER_METRICS, SERVER_CPU],
      reduce: (r) => ({ ...transfer(r), serverCpuS: r.serverCpuS }),
    },
    jump: {
      title: `j. exec download through one jump host: head -c ${cfg.jumpMiB} MiB of /dev/zero (both hops on the same sshd)`,
      params: { bytes: cfg.jumpMiB * MiB },
      metrics: [...TRANSFER_METRICS, SERVER_CPU],
      reduce: (r) => ({ ...transfer(r), serverCpuS: r.serverCpuS }),
    },
    'jump-upload': {
      title: `k. exec upload through one jump host: ${cfg.jumpMiB} MiB into \`cat > /dev/null\` (${cfg.chunkKiB} KiB writes)`,
      params: { bytes: cfg.jumpMiB * MiB, chunk: cfg.chunkKiB * 1024 },
      metrics: [...TRANSFER_METRICS, SERVER_CPU],
      reduce: (r) => ({ ...transfer(r), serverCpuS: r.serverCpuS }),
    },
    'jump-connect': {
      title: `l. connect + auth through one jump host, then exec \`true\`, ${cfg.connectRuns} sequential runs`,
      params: { count: cfg.connectRuns },
      metrics: [
        { key: 'p50Ms', title: 'median ms', better: 'lower' },
        { key: 'p90Ms', title: 'p90 ms', better: 'lower' },
      ],
      reduce: (r) => ({ p50Ms: percentile(r.latenciesMs, 50), p90Ms: percentile(r.latenciesMs, 90) }),
    },
  }
}

const TRANSFER_METRICS = [
  { key: 'mibps', title: 'MiB/s', better: 'higher' },
  { key: 'cpuS', title: 'CPU s', better: 'lower' },
]
/** The sshd's CPU over the whole child run (set-up included): the server's share of the box. */
const SERVER_CPU = { key: 'serverCpuS', title: 'sshd CPU s', better: 'lower' }
const transfer = (r) => ({ mibps: r.bytes / MiB / r.wallS, cpuS: r.cpuS })

/** Median over rounds of each metric. */
export function summarize(spec, rounds) {
  const reduced = rounds.map(spec.reduce)
  const out = {}
  for (const m of spec.metrics) out[m.key] = median(reduced.map((r) => r[m.key]))
  return out
}

/**
 * DESIGN.md "Performance targets" for ferrossh, as checks over the summaries.
 * Each: [description, ferrossh metric, comparator peer, metric, factor, 'le' | 'ge'].
 */
export const TARGETS = {
  connect: [['median latency ≤ ssh2', 'p50Ms', 'ssh2', 'p50Ms', 1, 'le']],
  download: [
    ['MiB/s ≥ ssh2', 'mibps', 'ssh2', 'mibps', 1, 'ge'],
    ['MiB/s ≥ OpenSSH', 'mibps', 'OpenSSH ssh', 'mibps', 1, 'ge'],
    ['CPU ≤ 0.7× ssh2', 'cpuS', 'ssh2', 'cpuS', 0.7, 'le'],
    ['loop p99 ≤ 0.8× ssh2', 'loopP99Ms', 'ssh2', 'loopP99Ms', 0.8, 'le'],
  ],
  upload: [
    ['MiB/s ≥ 1.1× ssh2', 'mibps', 'ssh2', 'mibps', 1.1, 'ge'],
    ['CPU ≤ 0.5× ssh2', 'cpuS', 'ssh2', 'cpuS', 0.5, 'le'],
  ],
  roundtrip: [
    ['p99 ≤ ssh2', 'p99Us', 'ssh2', 'p99Us', 1, 'le'],
    ['CPU ≤ 1.0× ssh2', 'cpuS', 'ssh2', 'cpuS', 1, 'le'],
  ],
  concurrent: [
    ['wall ≤ 0.8× ssh2', 'wallS', 'ssh2', 'wallS', 0.8, 'le'],
    // Node's own baseline (~40 MiB) is in both peaks; the memory the connections cost is the Δ
    ['Δ RSS ≤ 0.5× ssh2', 'deltaRssMiB', 'ssh2', 'deltaRssMiB', 0.5, 'le'],
  ],
  'sftp-download': [
    ['MiB/s ≥ 1.1× OpenSSH sftp', 'mibps', 'OpenSSH ssh', 'mibps', 1.1, 'ge'],
    ['MiB/s ≥ 3× ssh2 fastGet', 'mibps', 'ssh2', 'mibps', 3, 'ge'],
    ['CPU ≤ 0.5× ssh2', 'cpuS', 'ssh2', 'cpuS', 0.5, 'le'],
  ],
  'sftp-upload': [
    ['MiB/s ≥ OpenSSH sftp', 'mibps', 'OpenSSH ssh', 'mibps', 1, 'ge'],
    ['MiB/s ≥ 1.2× ssh2 fastPut', 'mibps', 'ssh2', 'mibps', 1.2, 'ge'],
    ['CPU ≤ 0.5× ssh2', 'cpuS', 'ssh2', 'cpuS', 0.5, 'le'],
  ],
  'sftp-stream': [['MiB/s ≥ 5× ssh2 (default highWaterMark)', 'mibps', 'ssh2', 'mibps', 5, 'ge']],
  forward: [['MiB/s ≥ 1.5× ssh2', 'mibps', 'ssh2', 'mibps', 1.5, 'ge']],
  jump: [['MiB/s ≥ 1.2× ssh2', 'mibps', 'ssh2', 'mibps', 1.2, 'ge']],
  'jump-upload': [['MiB/s ≥ 2× ssh2', 'mibps', 'ssh2', 'mibps', 2, 'ge']],
  'jump-connect': [['median latency ≤ 0.7× ssh2', 'p50Ms', 'ssh2', 'p50Ms', 0.7, 'le']],
}
