// One measurement in its own process: `node bench/lib/child.mjs <peer> <workload> <params-json>`.
// Prints a single JSON line with the figures. A fresh process per measurement keeps one peer's
// heap, threads and peak RSS out of another's numbers.
//
// Library peers (bench/peers/<name>.mjs exporting connect/execTrue/download/upload/openEcho/close,
// and for the SFTP, forward and jump workloads sftp/sftpDownload/sftpUpload/sftpReadStream/
// sftpEnd/forwardLocal/connectJump) are driven by the workloads below, which own all timing so every library is measured the same
// way; a peer that measures itself (the OpenSSH driver) exports runWorkload instead.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { existsSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { runSink } from './sink.mjs'
import { checkSamples } from './fixtures.mjs'
import { countBytes } from './streams.mjs'

const [peerName, workload, paramsJson] = process.argv.slice(2)
const params = JSON.parse(paramsJson)

/** CPU time (all threads: napi/tokio workers count too), wall time and event-loop delay. */
function startMeasure() {
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  const cpu0 = process.cpuUsage()
  const ru0 = process.resourceUsage()
  const t0 = performance.now()
  return () => {
    const wallS = (performance.now() - t0) / 1e3
    const cpu = process.cpuUsage(cpu0)
    const ru = process.resourceUsage()
    loop.disable()
    return {
      wallS,
      cpuS: (cpu.user + cpu.system) / 1e6,
      // where CPU goes on a VM: fresh pages and thread wake-ups are its dearest costs
      minorFaults: ru.minorPageFault - ru0.minorPageFault,
      contextSwitches: ru.voluntaryContextSwitches + ru.involuntaryContextSwitches - ru0.voluntaryContextSwitches - ru0.involuntaryContextSwitches,
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
    }
  }
}

/**
 * Private (anonymous) resident memory, Linux only: RSS without the pages of mapped files
 * (program and library code), which the page cache shares with every process.
 */
function anonRssKb() {
  try {
    const m = /RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** `head -c bytes /dev/zero` on the connection `connecting` gives, timed from the exec to the end. */
async function timedDownload(peer, p, connecting) {
  const s = await connecting
  const stop = startMeasure()
  const bytes = await peer.download(s, `head -c ${p.bytes} /dev/zero`)
  const m = stop()
  await peer.close(s)
  if (bytes !== p.bytes) throw new Error(`received ${bytes} bytes, expected ${p.bytes}`)
  return { bytes, ...m }
}

/**
 * One SFTP transfer to `dest` (a local path, or a remote one the harness can see locally),
 * timed around `run(sftp)`; the copy is size- and sample-checked, and removed on every path
 * (a deleted file's dirty pages are dropped, not written back during the next peer's run).
 */
async function sftpTransfer(peer, p, name, dest, run) {
  const s = await peer.connect(p.target)
  const sftp = await peer.sftp(s)
  try {
    const stop = startMeasure()
    await run(sftp)
    const m = stop()
    const bytes = statSync(dest).size
    if (bytes !== p.bytes) throw new Error(`${name}: ${bytes} bytes arrived, expected ${p.bytes}`)
    checkSamples(p.fixture.sftpFile, dest, bytes)
    await peer.sftpEnd(sftp)
    await peer.close(s)
    return { bytes, ...m, note: peer.sftpNote?.(name, p.variant) }
  } finally {
    if (existsSync(dest)) unlinkSync(dest)
  }
}

/** `p.count` sequential `open()` + exec `true`, each timed until the exit status. */
async function timedConnects(peer, p, open) {
  const latenciesMs = []
  for (let i = 0; i < p.count; i++) {
    const t0 = performance.now()
    const s = await open()
    await peer.execTrue(s)
    latenciesMs.push(performance.now() - t0)
    // teardown is not part of the latency a caller waits for
    await peer.close(s)
  }
  return { latenciesMs }
}

/** `p.bytes` into `cat > /dev/null` on the connection `connecting` gives, timed from the exec. */
async function timedUpload(peer, p, connecting) {
  const s = await connecting
  // The same zeroed chunk is written over and over; its contents never change, so a peer
  // that holds on to it until the window opens still sends the right bytes.
  const chunk = Buffer.alloc(p.chunk)
  const stop = startMeasure()
  await peer.upload(s, 'cat > /dev/null', p.bytes, chunk)
  const m = stop()
  await peer.close(s)
  return { bytes: p.bytes, ...m }
}

const workloads = {
  connect: (peer, p) => timedConnects(peer, p, () => peer.connect(p.target)),
  download: (peer, p) => timedDownload(peer, p, peer.connect(p.target)),
  upload: (peer, p) => timedUpload(peer, p, peer.connect(p.target)),

  async roundtrip(peer, p) {
    const s = await peer.connect(p.target)
    const echo = await peer.openEcho(s, 'cat')
    let received = 0
    let want = 0
    let wake = null
    echo.onData((d) => {
      received += d.length
      if (wake && received >= want) {
        const w = wake
        wake = null
        w()
      }
    })
    const msg = Buffer.alloc(p.size, 0x61)
    // write() may return a promise (russh) whose rejection must fail the run, not hang it
    const once = () => new Promise((resolve, reject) => {
      want += p.size
      wake = resolve
      Promise.resolve(echo.write(msg)).catch(reject)
    })
    // untimed warm-up: the remote cat has to start, and JIT tiers settle
    for (let i = 0; i < p.warmup; i++) await once()
    const latenciesUs = []
    const stop = startMeasure()
    for (let i = 0; i < p.count; i++) {
      const t0 = performance.now()
      await once()
      latenciesUs.push((performance.now() - t0) * 1e3)
    }
    const m = stop()
    await echo.end()
    await peer.close(s)
    return { latenciesUs, cpuS: m.cpuS, loopP99Ms: m.loopP99Ms }
  },

  // SFTP: the connection and the SFTP session are set up before the clock starts; the file was
  // written once per run by the harness (bench/lib/fixtures.mjs) and is in the page cache.
  async 'sftp-download'(peer, p) {
    const local = join(p.fixture.localDir, `download-${process.pid}.bin`)
    return sftpTransfer(peer, p, 'sftp-download', local, (sftp) => peer.sftpDownload(sftp, p.fixture.sftpFile, local, p.variant))
  },

  async 'sftp-upload'(peer, p) {
    // the server is this machine: the uploaded file is checked and removed through the local fs
    const remote = `${p.fixture.home}/ferrossh-bench-upload-${process.pid}.bin`
    return sftpTransfer(peer, p, 'sftp-upload', remote, (sftp) => peer.sftpUpload(sftp, p.fixture.sftpFile, remote, p.variant))
  },

  async 'sftp-stream'(peer, p) {
    const s = await peer.connect(p.target)
    const sftp = await peer.sftp(s)
    const stop = startMeasure()
    // opening the file is part of the stream, as a caller sees it
    const bytes = await countBytes(peer.sftpReadStream(sftp, p.fixture.sftpFile, p.variant))
    const m = stop()
    if (bytes !== p.bytes) throw new Error(`streamed ${bytes} bytes, expected ${p.bytes}`)
    await peer.sftpEnd(sftp)
    await peer.close(s)
    return { bytes, ...m }
  },

  // The byte source runs in the harness and the sink in a process of its own (bench/lib/sink.mjs),
  // so the CPU counted here is the forwarding alone.
  async forward(peer, p) {
    const s = await peer.connect(p.target)
    const fwd = await peer.forwardLocal(s, '127.0.0.1', p.fixture.sourcePort)
    const stop = startMeasure()
    const sink = await runSink(fwd.port, p.bytes)
    const m = stop()
    await fwd.close()
    await peer.close(s)
    // wall time is the sink's (connect to last byte); the window above adds its process start
    return { bytes: sink.bytes, wallS: sink.wallS, cpuS: m.cpuS, loopP99Ms: m.loopP99Ms, sinkCpuS: sink.cpuS, windowS: m.wallS }
  },

  jump: (peer, p) => timedDownload(peer, p, peer.connectJump(p.target)),
  'jump-upload': (peer, p) => timedUpload(peer, p, peer.connectJump(p.target)),
  'jump-connect': (peer, p) => timedConnects(peer, p, () => peer.connectJump(p.target)),

  // One connection is made and closed first, so that what is measured is what connections
  // cost, not the one-time cost of loading code and starting a runtime (reported apart).
  async concurrent(peer, p) {
    const rssColdKb = Math.round(process.memoryUsage().rss / 1024)
    const first = await peer.connect(p.target)
    await peer.execTrue(first)
    await peer.close(first)
    const rssBeforeKb = Math.round(process.memoryUsage().rss / 1024)
    const anonBeforeKb = anonRssKb()
    const stop = startMeasure()
    const sessions = await Promise.all(Array.from({ length: p.count }, async () => {
      const s = await peer.connect(p.target)
      await peer.execTrue(s)
      return s
    }))
    const m = stop()
    const maxRssKb = process.resourceUsage().maxRSS
    const anonAfterKb = anonRssKb()
    await Promise.all(sessions.map((s) => peer.close(s)))
    return { wallS: m.wallS, cpuS: m.cpuS, maxRssKb, rssColdKb, rssBeforeKb, anonBeforeKb, anonAfterKb }
  },
}

async function main() {
  const peer = await import(`../peers/${peerName}.mjs`)
  if (typeof peer.runWorkload === 'function') return peer.runWorkload(workload, params)
  const run = workloads[workload]
  if (!run) throw new Error(`unknown workload ${workload}`)
  return run(peer, params)
}

main().then(
  (result) => {
    // A library that leaves a handle open must not hang the bench; exit as soon as the figures
    // are out. Out means written: a line longer than the pipe holds (many round-trip latencies)
    // is finished asynchronously, and exiting before that would cut it short.
    process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
  },
  (err) => {
    process.stderr.write(`${peerName}/${workload}: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
