// The two ends of the forward workload: `byte-pump` (bench/rust-floor/src/bin/byte-pump.rs), a
// blocking loop over 1 MiB buffers in a process of its own. On a 2-core machine the source and
// the sink share the cores with sshd and the forwarder being measured; in Node they cost about
// 0.1 s of CPU each per 256 MiB, which capped every forwarder by the harness, not by itself.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
export const pumpBinary = `${root}target/release/byte-pump`
const BUILD = 'nice -n 10 cargo build --release -p ferrossh-rust-floor'

/** Why the forward workload cannot run, or null. */
export function pumpUnavailable() {
  return existsSync(pumpBinary) ? null : `${pumpBinary} is not built (run: ${BUILD})`
}

/** The sink as a command line prefix: `<prefix> <port> <bytes>`. */
export const sinkCommand = `${pumpBinary} sink`

/**
 * Runs the sink against 127.0.0.1:port; resolves with { bytes, wallS, cpuS } once `bytes`
 * have arrived (wall: from its connect() to the end).
 */
export function runSink(port, bytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(pumpBinary, ['sink', String(port), String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] })
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

/** The byte source: a pump process that writes `bytes` to every connection on its port. */
export function startByteSource(bytes) {
  return new Promise((resolve, reject) => {
    const child = spawn(pumpBinary, ['source', String(bytes)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (d) => { err += d })
    child.on('error', reject)
    child.on('exit', (code) => reject(new Error(`byte source exited with ${code}: ${err.trim()}`)))
    child.stdout.setEncoding('utf8').on('data', (d) => {
      out += d
      const line = out.split('\n')
      if (line.length < 2) return
      const port = Number(line[0])
      if (!Number.isInteger(port) || port <= 0) return reject(new Error(`byte source printed ${line[0]}`))
      resolve({
        port,
        close: () => new Promise((done) => {
          child.removeAllListeners('exit')
          child.once('exit', () => done())
          child.kill('SIGKILL')
        }),
      })
    })
  })
}
