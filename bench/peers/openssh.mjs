// The OpenSSH `ssh` client, one process per session, driven from this Node process through
// pipes. It measures itself (runWorkload) because its CPU lives in another process:
//  - CPU comes from the ssh process's rusage, read by bash's `time` (millisecond resolution;
//    GNU time only reports hundredths);
//  - connection set-up, authentication and teardown are removed from throughput figures by
//    subtracting the median of three no-op `ssh … true` runs timed the same way;
//  - round-trip latency includes the hop through the pipes to and from this process, the way an
//    application that shells out to ssh would see it;
//  - for 100 concurrent connections, memory is the sum of the 100 processes' peak RSS.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { once } from 'node:events'
import { median } from '../lib/stats.mjs'
import { writeAll } from '../lib/streams.mjs'

export const label = 'OpenSSH ssh'

export function unavailableReason() {
  if (!existsSync('/usr/bin/ssh') && !whichOk('ssh')) return 'the ssh client is not installed'
  if (!whichOk('bash')) return 'bash is needed to time the ssh process'
  if (!existsSync('/usr/bin/time')) return '/usr/bin/time is needed for per-process peak RSS (apt-get install time)'
  return null
}

function whichOk(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function sshArgs(t, cmd) {
  return [
    '-T', '-F', '/dev/null', '-p', String(t.port), '-i', t.keyPath,
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', `Ciphers=${t.cipher}`,
    // the key exchange the libraries negotiate with this sshd; OpenSSH's default
    // (sntrup761x25519) costs ~80 ms more per connection here, which is policy, not speed
    '-o', 'KexAlgorithms=curve25519-sha256',
    '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', 'LogLevel=ERROR',
    `${t.user}@${t.host}`, cmd,
  ]
}

// bash reports the ssh child's rusage on fd 3, leaving ssh's own stderr untouched; with RSS_FILE
// set, GNU time sits between bash and ssh to record ssh's peak RSS (bash's `time` cannot)
const TIMED = 'exec 4>&2; TIMEFORMAT="%3R %3U %3S"; { time "$@" 2>&4; } 2>&3'
const TIMED_RSS = 'exec 4>&2; TIMEFORMAT="%3R %3U %3S"; { time /usr/bin/time -f %M -o "$RSS_FILE" "$@" 2>&4; } 2>&3'

/**
 * Starts `ssh … cmd` under bash's `time`. Returns the child (stdin/stdout pipes) and a promise of
 * { wallS, cpuS, maxRssKb? } for the ssh process, rejected if ssh fails.
 */
function timedSsh(t, cmd, { rssFile } = {}) {
  const script = rssFile ? TIMED_RSS : TIMED
  const child = spawn('bash', ['-c', script, 'bash', 'ssh', ...sshArgs(t, cmd)], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: rssFile ? { ...process.env, RSS_FILE: rssFile } : process.env,
  })
  const t0 = performance.now()
  let report = ''
  let stderr = ''
  child.stdio[3].setEncoding('utf8').on('data', (d) => { report += d })
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
  const done = once(child, 'close').then(([code]) => {
    const wallS = (performance.now() - t0) / 1e3
    if (code !== 0) throw new Error(`ssh ${cmd} exited with ${code}: ${stderr.trim()}`)
    const [, user, sys] = report.trim().split(/\s+/).map(Number)
    if (!Number.isFinite(user + sys)) throw new Error(`no timing report from bash: ${report}`)
    const out = { wallS, cpuS: user + sys }
    // GNU time writes "Command exited with non-zero status" lines first when ssh fails
    if (rssFile) out.maxRssKb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop())
    return out
  })
  return { child, done }
}

/** Median cost of a whole no-op session: what every throughput run also pays around its transfer. */
async function setupCost(t) {
  const runs = []
  for (let i = 0; i < 3; i++) {
    const { child, done } = timedSsh(t, 'true')
    child.stdin.end()
    child.stdout.resume()
    runs.push(await done)
  }
  return { wallS: median(runs.map((r) => r.wallS)), cpuS: median(runs.map((r) => r.cpuS)) }
}

const minus = (run, base) => ({ wallS: run.wallS - base.wallS, cpuS: run.cpuS - base.cpuS })

const workloads = {
  async connect(p) {
    const latenciesMs = []
    for (let i = 0; i < p.count; i++) {
      const t0 = performance.now()
      const child = spawn('ssh', sshArgs(p.target, 'true'), { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (d) => { stderr += d })
      const [code] = await once(child, 'close')
      if (code !== 0) throw new Error(`ssh true exited with ${code}: ${stderr}`)
      latenciesMs.push(performance.now() - t0)
    }
    return { latenciesMs, note: 'end to end (process start to exit), kex pinned to curve25519-sha256' }
  },

  async download(p) {
    const base = await setupCost(p.target)
    const { child, done } = timedSsh(p.target, `head -c ${p.bytes} /dev/zero`)
    child.stdin.end()
    let bytes = 0
    child.stdout.on('data', (d) => { bytes += d.length })
    const run = await done
    if (bytes !== p.bytes) throw new Error(`received ${bytes} bytes, expected ${p.bytes}`)
    return { bytes, ...minus(run, base), note: 'set-up subtracted (no-op session)' }
  },

  async upload(p) {
    const base = await setupCost(p.target)
    const { child, done } = timedSsh(p.target, 'cat > /dev/null')
    child.stdout.resume()
    await writeAll(child.stdin, p.bytes, Buffer.alloc(p.chunk))
    const run = await done
    return { bytes: p.bytes, ...minus(run, base), note: 'set-up subtracted (no-op session)' }
  },

  async roundtrip(p) {
    const base = await setupCost(p.target)
    const { child, done } = timedSsh(p.target, 'cat')
    let received = 0
    let want = 0
    let wake = null
    child.stdout.on('data', (d) => {
      received += d.length
      if (wake && received >= want) {
        const w = wake
        wake = null
        w()
      }
    })
    const msg = Buffer.alloc(p.size, 0x61)
    const once1 = () => new Promise((resolve) => {
      want += p.size
      wake = resolve
      child.stdin.write(msg)
    })
    // the first round trip waits for the whole connection set-up
    for (let i = 0; i < p.warmup; i++) await once1()
    const latenciesUs = []
    for (let i = 0; i < p.count; i++) {
      const t0 = performance.now()
      await once1()
      latenciesUs.push((performance.now() - t0) * 1e3)
    }
    child.stdin.end()
    const run = await done
    return { latenciesUs, cpuS: run.cpuS - base.cpuS, note: 'CPU: whole session minus a no-op session' }
  },

  async concurrent(p) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-openssh-'))
    try {
      const t0 = performance.now()
      const runs = await Promise.all(Array.from({ length: p.count }, (_, i) => {
        const { child, done } = timedSsh(p.target, 'true', { rssFile: join(dir, `${i}`) })
        child.stdin.end()
        child.stdout.resume()
        return done
      }))
      const wallS = (performance.now() - t0) / 1e3
      const sum = (k) => runs.reduce((a, r) => a + r[k], 0)
      return {
        wallS,
        cpuS: sum('cpuS'),
        maxRssKb: sum('maxRssKb'),
        rssBeforeKb: 0,
        note: `memory: sum of ${p.count} ssh processes' peak RSS; CPU: sum of theirs`,
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },
}

export function runWorkload(workload, params) {
  const run = workloads[workload]
  if (!run) throw new Error(`unknown workload ${workload}`)
  return run(params)
}
