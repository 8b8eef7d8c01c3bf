// The receiving end of the forward workload, in a process of its own so that its CPU is not
// counted as the forwarder's: `node bench/lib/sink.mjs <port> <bytes>` connects to
// 127.0.0.1:<port>, counts what arrives until the other side ends, and prints
// { bytes, wallS, cpuS } (wall: from connect() to the end).
import { spawn } from 'node:child_process'
import net from 'node:net'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

const self = fileURLToPath(import.meta.url)

/** Runs the sink against 127.0.0.1:port; resolves with its figures once `bytes` have arrived. */
export function runSink(port, bytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [self, String(port), String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (d) => { out += d })
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`sink exited with ${code}: ${err.trim()}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()))
      } catch {
        reject(new Error(`sink printed no result: ${out}${err}`))
      }
    })
  })
}

function main() {
  const port = Number(process.argv[2])
  const expected = Number(process.argv[3])
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  let n = 0
  const sock = net.connect(port, '127.0.0.1')
  sock.on('data', (d) => { n += d.length })
  sock.on('error', (e) => {
    process.stderr.write(`sink: ${e.message}\n`)
    process.exit(1)
  })
  sock.on('end', () => {
    const wallS = (performance.now() - t0) / 1e3
    const cpu = process.cpuUsage(cpu0)
    sock.end()
    if (n !== expected) {
      process.stderr.write(`sink: received ${n} bytes, expected ${expected}\n`)
      process.exit(1)
    }
    process.stdout.write(JSON.stringify({ bytes: n, wallS, cpuS: (cpu.user + cpu.system) / 1e6 }) + '\n')
    process.exit(0)
  })
}

if (process.argv[1] === self) main()
