// The OpenSSH `ssh` client, one process per session, driven from this Node process through
// pipes. It measures itself (runWorkload) because its CPU lives in another process:
//  - CPU comes from the ssh process's rusage, read by bash's `time` (millisecond resolution;
//    GNU time only reports hundredths);
//  - connection set-up, authentication and teardown are removed from throughput figures by
//    subtracting the median of three no-op `ssh … true` runs timed the same way;
//  - round-trip latency includes the hop through the pipes to and from this process, the way an
//    application that shells out to ssh would see it;
//  - for 100 concurrent connections, memory is the sum of the 100 processes' peak RSS;
//  - SFTP uses the `sftp` client in batch mode (its ssh child's CPU counts: sftp waits for it),
//    the set-up subtracted being an empty batch; the forward is `ssh -N -L`, stopped with
//    SIGTERM once the sink has everything, minus an idle forward's CPU; the jump is `ssh -J`
//    with both ssh processes timed.
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { once } from 'node:events'
import { median } from '../lib/stats.mjs'
import { writeAll } from '../lib/streams.mjs'
import { runSink } from '../lib/sink.mjs'
import { checkSamples } from '../lib/fixtures.mjs'
import { freePort } from '../../__test__/fixtures/sshd.mjs'

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

/** Everything but the port and the destination; shared by ssh and sftp (which passes -o on to ssh). */
function sshOptions(t, { logLevel = 'ERROR' } = {}) {
  return [
    '-F', '/dev/null', '-i', t.keyPath,
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${t.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes', '-o', `Ciphers=${t.cipher}`,
    // the key exchange the libraries negotiate with this sshd; OpenSSH's default
    // (sntrup761x25519) costs ~80 ms more per connection here, which is policy, not speed
    '-o', 'KexAlgorithms=curve25519-sha256',
    '-o', 'ControlMaster=no', '-o', 'ControlPath=none', '-o', `LogLevel=${logLevel}`,
  ]
}

function sshArgs(t, cmd) {
  return ['-T', '-p', String(t.port), ...sshOptions(t), `${t.user}@${t.host}`, cmd]
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
  return timed('ssh', sshArgs(t, cmd), { rssFile })
}

/** Any client program (ssh, sftp) under bash's `time`; its children (sftp's ssh) count too. */
function timed(file, args, { rssFile, env } = {}) {
  const cmd = `${file} ${args.at(-1)}`
  const script = rssFile ? TIMED_RSS : TIMED
  const child = spawn('bash', ['-c', script, 'bash', file, ...args], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env, ...(rssFile ? { RSS_FILE: rssFile } : {}) },
  })
  const t0 = performance.now()
  let report = ''
  let stderr = ''
  child.stdio[3].setEncoding('utf8').on('data', (d) => { report += d })
  child.stderr.setEncoding('utf8').on('data', (d) => { stderr += d })
  const done = once(child, 'close').then(([code]) => {
    const wallS = (performance.now() - t0) / 1e3
    if (code !== 0) throw new Error(`${cmd} exited with ${code}: ${stderr.trim()}`)
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

// --- the sftp client, `ssh -N -L` and `ssh -J` ---------------------------------------------

function sftpArgs(t, batchFile) {
  return ['-q', '-b', batchFile, '-P', String(t.port), ...sshOptions(t), `${t.user}@${t.host}`]
}

/** One `sftp -b` run: the sftp process and the ssh it starts (and waits for) are both timed. */
async function sftpBatch(t, batchFile) {
  const { child, done } = timed('sftp', sftpArgs(t, batchFile))
  child.stdin.end()
  child.stdout.resume() // -b echoes each command
  return done
}

/** The median of three `sftp -b` runs of an empty batch: connect, auth, subsystem start, quit. */
async function sftpSetupCost(t, dir) {
  const empty = join(dir, 'empty.batch')
  writeFileSync(empty, '')
  const runs = []
  for (let i = 0; i < 3; i++) runs.push(await sftpBatch(t, empty))
  return { wallS: median(runs.map((r) => r.wallS)), cpuS: median(runs.map((r) => r.cpuS)) }
}

async function sftpTransfer(p, line, written) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sftp-'))
  try {
    const base = await sftpSetupCost(p.target, dir)
    const batch = join(dir, 'transfer.batch')
    writeFileSync(batch, `${line}\n`)
    const run = await sftpBatch(p.target, batch)
    const bytes = statSync(written).size
    if (bytes !== p.bytes) throw new Error(`${line}: ${bytes} bytes written, expected ${p.bytes}`)
    checkSamples(p.fixture.sftpFile, written, bytes)
    return { bytes, ...minus(run, base), note: 'the sftp client (sftp -b, default -R 64 -B 32768; its ssh counted); set-up subtracted (empty batch)' }
  } finally {
    rmSync(dir, { recursive: true, force: true })
    rmSync(written, { force: true })
  }
}

// bash runs the client in the background so this process can stop it (ssh -N never exits on
// its own), then reports the reaped child's rusage with `times` (second line: children).
const BACKGROUND = 'exec 4>&2; "$@" 2>&4 & echo $! >&3; wait $!; code=$?; times >&3; exit $code'

/**
 * `ssh -N -L 127.0.0.1:<port>:127.0.0.1:<remotePort>` under bash; resolves once the listener is up
 * with { stop() } that ends ssh and resolves with its CPU seconds.
 */
async function sshForward(t, remotePort) {
  const port = await freePort()
  const args = [
    '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${port}:127.0.0.1:${remotePort}`,
    '-p', String(t.port), ...sshOptions(t, { logLevel: 'DEBUG1' }), `${t.user}@${t.host}`,
  ]
  const child = spawn('bash', ['-c', BACKGROUND, 'bash', 'ssh', ...args], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] })
  let report = ''
  let stderr = ''
  child.stdio[3].setEncoding('utf8').on('data', (d) => { report += d })
  const closed = once(child, 'close')
  // debug1 says when the listener is up; nothing else on this path is logged per packet
  await new Promise((resolve, reject) => {
    const ready = `Local forwarding listening on 127.0.0.1 port ${port}.`
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr = (stderr + d).slice(-20_000)
      if (stderr.includes(ready)) resolve()
    })
    closed.then(() => reject(new Error(`ssh -N -L exited before listening: ${stderr.trim().split('\n').slice(-5).join('\n')}`)))
  })
  return {
    port,
    async stop() {
      const pid = Number(report.split('\n')[0])
      try {
        process.kill(pid, 'SIGTERM')
      } catch {
        // already gone: its rusage is reported all the same
      }
      await closed
      // `times`: the shell's own user/sys, then its children's
      const children = report.trim().split('\n').pop().match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/)
      if (!children) throw new Error(`no times report from bash: ${report}`)
      const [, um, us, sm, ss] = children.map(Number)
      return um * 60 + us + sm * 60 + ss
    },
  }
}

/** The ssh config both processes of `ssh -J` read (-J passes only -F on to the jump's ssh). */
function jumpConfig(t, dir) {
  const file = join(dir, 'ssh_config')
  writeFileSync(file, [
    // OpenSSH refuses a jump host spelled like the destination ("jumphost loop"): an alias
    'Host jumphost',
    `  HostName ${t.host}`,
    `  Port ${t.port}`,
    `  HostKeyAlias [${t.host}]:${t.port}`,
    'Host *',
    `  User ${t.user}`,
    `  IdentityFile ${t.keyPath}`,
    '  IdentitiesOnly yes',
    '  BatchMode yes',
    `  UserKnownHostsFile ${t.knownHostsFile}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    `  Ciphers ${t.cipher}`,
    '  KexAlgorithms curve25519-sha256',
    '  ControlMaster no',
    '  ControlPath none',
    '  LogLevel ERROR',
    '',
  ].join('\n'))
  // `ssh -J jumphost` runs exactly this ProxyCommand (ssh -F <config> -W '[%h]:%p' jumphost);
  // it is spelled out to time the jump's ssh, which the main ssh never reaps (it sends it SIGHUP
  // on exit and leaves). The wrapper ignores that SIGHUP so it lives to report; the jump's ssh
  // ends on its own when its stdin closes.
  const hop = join(dir, 'hop.sh')
  writeFileSync(hop, [
    "trap '' HUP",
    'TIMEFORMAT="%3R %3U %3S"',
    `{ time ssh -F ${file} -W "[$1]:$2" jumphost 2>&4; } 4>&2 2>"$HOP_TIME"`,
    '',
  ].join('\n'))
  return { file, hop }
}

let jumpRuns = 0
/** One `ssh` session through the jump; resolves with wall and CPU of both ssh processes. */
async function jumpSession(t, dir, cfg, cmd, onData, feed) {
  const hopTime = join(dir, `hop-time-${jumpRuns++}`)
  const args = ['-T', '-F', cfg.file, '-o', `ProxyCommand=bash ${cfg.hop} %h %p`, '-p', String(t.port), t.host, cmd]
  const { child, done } = timed('ssh', args, { env: { HOP_TIME: hopTime } })
  if (onData) child.stdout.on('data', onData)
  else child.stdout.resume()
  if (feed) await feed(child.stdin)
  else child.stdin.end()
  const run = await done
  // the jump's ssh outlives the main one by its teardown
  const deadline = Date.now() + 10_000
  let report = ''
  while (!/\d\s*$/.test(report)) {
    if (Date.now() > deadline) throw new Error(`the jump's ssh did not report its times: ${report}`)
    await new Promise((r) => setTimeout(r, 20))
    report = existsSync(hopTime) ? readFileSync(hopTime, 'utf8') : ''
  }
  const [, user, sys] = report.trim().split('\n').pop().split(/\s+/).map(Number)
  return { wallS: run.wallS, cpuS: run.cpuS + user + sys, mainCpuS: run.cpuS, hopCpuS: user + sys }
}

Object.assign(workloads, {
  'sftp-download': (p) => {
    const local = join(p.fixture.localDir, `download-openssh-${process.pid}.bin`)
    return sftpTransfer(p, `get "${p.fixture.sftpFile}" "${local}"`, local)
  },

  'sftp-upload': (p) => {
    const remote = `${p.fixture.home}/ferrossh-bench-upload-${process.pid}.bin`
    return sftpTransfer(p, `put "${p.fixture.sftpFile}" "${remote}"`, remote)
  },

  async forward(p) {
    // baseline: the same forward set up and stopped without a transfer, median of three
    const idle = []
    for (let i = 0; i < 3; i++) idle.push(await (await sshForward(p.target, p.fixture.sourcePort)).stop())
    const fwd = await sshForward(p.target, p.fixture.sourcePort)
    const sink = await runSink(fwd.port, p.bytes)
    const cpuS = await fwd.stop()
    return {
      bytes: sink.bytes,
      wallS: sink.wallS,
      cpuS: cpuS - median(idle),
      idleCpuS: median(idle),
      sinkCpuS: sink.cpuS,
      note: 'ssh -N -L; CPU: the ssh process minus an idle forward (set up and stopped)',
    }
  },

  async jump(p) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-jump-'))
    try {
      const cfg = jumpConfig(p.target, dir)
      const idle = []
      for (let i = 0; i < 3; i++) idle.push(await jumpSession(p.target, dir, cfg, 'true'))
      let bytes = 0
      const run = await jumpSession(p.target, dir, cfg, `head -c ${p.bytes} /dev/zero`, (d) => { bytes += d.length })
      if (bytes !== p.bytes) throw new Error(`received ${bytes} bytes, expected ${p.bytes}`)
      const base = { wallS: median(idle.map((r) => r.wallS)), cpuS: median(idle.map((r) => r.cpuS)) }
      return {
        bytes,
        ...minus(run, base),
        // raw figures, before the set-up is subtracted
        mainCpuS: run.mainCpuS,
        hopCpuS: run.hopCpuS,
        setup: { wallS: base.wallS, cpuS: base.cpuS, hopCpuS: median(idle.map((r) => r.hopCpuS)) },
        note: 'ssh -J (as its ProxyCommand, to time the jump\'s ssh too); CPU: both ssh processes; set-up subtracted (no-op session)',
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  },

  'jump-upload': (p) => inJumpDir(p, async (cfg, dir) => {
    const idle = []
    for (let i = 0; i < 3; i++) idle.push(await jumpSession(p.target, dir, cfg, 'true'))
    const run = await jumpSession(p.target, dir, cfg, 'cat > /dev/null', null, (stdin) => writeAll(stdin, p.bytes, Buffer.alloc(p.chunk)))
    const base = { wallS: median(idle.map((r) => r.wallS)), cpuS: median(idle.map((r) => r.cpuS)) }
    return {
      bytes: p.bytes,
      ...minus(run, base),
      note: 'ssh -J (as its ProxyCommand, to time the jump\'s ssh too); CPU: both ssh processes; set-up subtracted (no-op session)',
    }
  }),

  // end to end, as the connect row: the main ssh's process start to exit
  'jump-connect': (p) => inJumpDir(p, async (cfg, dir) => {
    const latenciesMs = []
    for (let i = 0; i < p.count; i++) latenciesMs.push((await jumpSession(p.target, dir, cfg, 'true')).wallS * 1e3)
    return { latenciesMs, note: 'ssh -J, end to end (process start to exit), kex pinned to curve25519-sha256' }
  }),
})

/** Runs `fn(cfg, dir)` with the jump's ssh config in a directory removed afterwards. */
async function inJumpDir(p, fn) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-jump-'))
  try {
    return await fn(jumpConfig(p.target, dir), dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Workloads this peer sits out, with the reason shown in the table. */
export function unsupported(workload) {
  if (workload === 'sftp-stream') return 'the sftp client has no read stream (its get is measured in sftp-download)'
  return null
}

export function runWorkload(workload, params) {
  const run = workloads[workload]
  if (!run) throw new Error(`unknown workload ${workload}`)
  return run(params)
}
