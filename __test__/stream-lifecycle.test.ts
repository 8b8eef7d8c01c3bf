import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { Readable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'

import { connect, CommandError, DisconnectError, TimeoutError, type ConnectOptions, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import { withTimeout } from './fixtures/helpers'
import { collect } from './fixtures/sftp-helpers'

// Streams that end early, on purpose or not: a reader that gives up, a writer destroyed before
// end(), a connection that breaks under a stream, and exec()'s own handling of a Readable stdin.

let sshd: Sshd
let ssh: SshClient

const options = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: sshd.host, port: sshd.port, username: sshd.user,
  privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile }, ...extra,
})

beforeAll(async () => {
  sshd = await startSshd()
  ssh = await connect(options())
})
afterAll(async () => {
  await ssh?.close()
  await sshd?.stop()
})

/** A connection of its own, and a way to cut it from the server side (its sshd process dies). */
async function doomed(): Promise<{ c: SshClient; cut: () => Promise<void> }> {
  const c = await connect(options())
  return { c, cut: async () => { await c.exec('kill -9 $PPID').catch(() => {}) } }
}

describe('a reader that goes away', () => {
  it('breaking out of for await over stdout leaves the connection working, and stderr still arrives', async () => {
    // far more output than the channel buffers (4 MiB), then a line on stderr
    const p = ssh.spawn('head -c 64000000 /dev/zero; echo done >&2')
    const err = collect(p.stderr)
    let first = 0
    for await (const chunk of p.stdout) {
      first = (chunk as Buffer).length
      break
    }
    expect(first).toBeGreaterThan(0)
    expect(p.stdout.destroyed).toBe(true)
    const other = await withTimeout(ssh.exec('echo ok'), 10_000, 'another exec on the connection')
    expect(other.stdout.toString()).toBe('ok\n')
    expect((await withTimeout(err, 20_000, 'stderr')).toString()).toBe('done\n')
    expect(await withTimeout(p.exited, 20_000, 'exited')).toEqual({ code: 0, signal: null })
  })

  it('destroying stderr while reading stdout delivers all of stdout', async () => {
    const p = ssh.spawn('head -c 8000000 /dev/zero >&2; head -c 3000000 /dev/zero')
    p.stderr.destroy()
    const out = await withTimeout(collect(p.stdout), 20_000, 'stdout')
    expect(out.length).toBe(3_000_000)
    expect(await p.exited).toEqual({ code: 0, signal: null })
  })

  it('a chunk never holds more than twice its size in memory', async () => {
    // short bursts: reads of a few hundred KiB, not the full 1 MiB batches of a long transfer
    const p = ssh.spawn('for i in $(seq 1 60); do head -c 300000 /dev/zero; sleep 0.01; done')
    p.stderr.resume()
    const chunks: Buffer[] = []
    p.stdout.on('data', (c: Buffer) => chunks.push(c))
    await p.exited
    await finished(p.stdout)
    const data = chunks.reduce((n, c) => n + c.length, 0)
    const held = [...new Set(chunks.map((c) => c.buffer))].reduce((n, b) => n + b.byteLength, 0)
    expect(data).toBe(60 * 300_000)
    expect(held / data).toBeLessThan(2.2)
  })
})

describe('a writer that goes away', () => {
  it('stdin.destroy() sends EOF after what was written: the command ends', async () => {
    const p = ssh.spawn('cat')
    const out = collect(p.stdout)
    p.stdin.write('hello\n')
    await sleep(100)
    p.stdin.destroy()
    expect(await withTimeout(p.exited, 10_000, 'exited')).toEqual({ code: 0, signal: null })
    expect((await out).toString()).toBe('hello\n')
  })

  it('stdin.end() after the connection broke fails with the DisconnectError', async () => {
    const { c, cut } = await doomed()
    const p = c.spawn('sleep 30')
    p.stdout.resume()
    p.stderr.resume()
    await new Promise<void>((resolve, reject) => p.stdin.write('a line\n', (e) => (e ? reject(e) : resolve())))
    await cut()
    await expect(withTimeout(p.exited, 10_000, 'exited')).rejects.toBeInstanceOf(DisconnectError)
    p.stdin.end()
    await expect(withTimeout(finished(p.stdin), 5_000, 'finished(stdin)')).rejects.toBeInstanceOf(DisconnectError)
  })
})

describe('close() and the end of a shell', () => {
  it('close() after the command finished keeps its unread output', async () => {
    const p = ssh.spawn('seq 1 200000')
    p.stderr.resume()
    await p.exited
    await p.close()
    const out = await withTimeout(collect(p.stdout), 5_000, 'stdout')
    expect(out.length).toBe(1_288_895)
    expect(out.toString().endsWith('199999\n200000\n')).toBe(true)
  })

  it("a shell's stderr keeps its output after the shell ended, for a slow reader", async () => {
    const sh = await ssh.shell({ pty: false })
    sh.resume()
    let got = 0
    sh.stderr.on('data', (d: Buffer) => {
      got += d.length
      sh.stderr.pause()
      setTimeout(() => sh.stderr.resume(), 20)
    })
    const ended = finished(sh.stderr)
    sh.end('head -c 3000000 /dev/zero >&2; exit 0\n')
    expect(await sh.exited).toEqual({ code: 0, signal: null })
    await withTimeout(ended, 30_000, 'stderr end')
    expect(got).toBe(3_000_000)
  })

  it('a broken connection reaches streams nobody reads, after what they still hold', async () => {
    const { c, cut } = await doomed()
    // nothing was written to these: they hear the break at once, read or not
    const quiet = c.spawn('sleep 30')
    const sh = await c.shell({ pty: false })
    sh.write('sleep 30\n')
    // this one holds a line nobody has read yet: it stays readable, then errors
    const talky = c.spawn('echo kept; sleep 30')
    await withTimeout(new Promise<void>((r) => talky.stdout.once('readable', () => r())), 5000, 'the line arrived')
    await cut()
    for (const s of [quiet.stdout, quiet.stderr, quiet.stdin, sh, sh.stderr]) {
      await expect(withTimeout(finished(s), 5000, 'finished')).rejects.toBeInstanceOf(DisconnectError)
    }
    const chunks: Buffer[] = []
    const end = withTimeout(finished(talky.stdout.on('data', (d: Buffer) => chunks.push(d))), 5000, 'the held line, then the error')
    await expect(end).rejects.toBeInstanceOf(DisconnectError)
    expect(Buffer.concat(chunks).toString()).toBe('kept\n')
  })
  it('after the command exits, stdin is destroyed and the process and a shell Duplex close, as ChildProcess and a socket do', async () => {
    const p = ssh.spawn('exit 3')
    p.stdout.resume()
    p.stderr.resume()
    const close = new Promise<unknown[]>((r) => p.once('close', (...a: unknown[]) => r(a)))
    expect(await withTimeout(close, 5000, "'close'")).toEqual([3, null])
    expect(p.stdin.destroyed).toBe(true)
    const sh = await ssh.shell({ pty: false })
    sh.resume()
    sh.end('exit 0\n')
    await withTimeout(finished(sh), 5000, "the shell Duplex's end")
    const sh2 = await ssh.shell({ pty: false })
    sh2.resume()
    // the remote shell exits on its own; the writable side ends with it
    sh2.write('exit 0\n')
    await withTimeout(sh2.exited, 5000, 'exited')
    await withTimeout(finished(sh2), 5000, 'the Duplex closes without end()')
  })
  it("a broken connection reaches a shell's stderr as the DisconnectError", async () => {
    const { c, cut } = await doomed()
    const sh = await c.shell({ pty: false })
    sh.resume()
    const errors: unknown[] = []
    sh.stderr.on('error', (e) => errors.push(e))
    await cut()
    await expect(withTimeout(sh.exited, 10_000, 'exited')).rejects.toBeInstanceOf(DisconnectError)
    await withTimeout(finished(sh.stderr).catch(() => {}), 5_000, 'stderr')
    expect(errors.some((e) => e instanceof DisconnectError) || sh.stderr.errored instanceof DisconnectError).toBe(true)
  })
})

describe('exec() with a Readable stdin', () => {
  it('timeout rejects with TimeoutError', async () => {
    const t0 = Date.now()
    const e = await ssh.exec('sleep 10', { stdin: Readable.from([]), timeout: 500 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(TimeoutError)
    expect((e as TimeoutError).message).toContain('500 ms')
    expect(Date.now() - t0).toBeLessThan(5_000)
  })

  it('timeout and maxBuffer stop the command on the server, as with a Buffer stdin', async () => {
    const mark = `${Date.now() % 100000 + 40000}`
    const running = async (): Promise<string> => (await ssh.exec(`pgrep -f "[s]leep ${mark}" || true`)).stdout.toString().trim()
    await ssh.exec(`sleep ${mark}`, { stdin: Readable.from([]), timeout: 300 }).catch(() => {})
    await ssh.exec(`head -c 100000 /dev/zero; sleep ${mark}`, { stdin: Readable.from([]), maxBuffer: 10 }).catch(() => {})
    await sleep(500)
    expect(await running()).toBe('')
  })

  it('a stdin destroyed without an error rejects as pipeline() does, instead of waiting for good', async () => {
    const gone = new Readable({ read() {} })
    gone.destroy()
    await expect(withTimeout(ssh.exec('cat', { stdin: gone }), 5000, 'exec')).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' })
    // destroyed with an error before the call: that error
    const failed = new Readable({ read() {} })
    failed.on('error', () => {})
    failed.destroy(new Error('gone before'))
    await new Promise((r) => setImmediate(r))
    await expect(withTimeout(ssh.exec('cat', { stdin: failed }), 5000, 'exec')).rejects.toThrow('gone before')
    const later = new Readable({ read() {} })
    setTimeout(() => later.destroy(), 200)
    await expect(withTimeout(ssh.exec('cat', { stdin: later }), 5000, 'exec')).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' })
  })

  it('timeout counts from the call: a wait for a session slot is part of it', async () => {
    const c = await connect(options({ maxSessions: 1 }))
    try {
      const busy = c.spawn('sleep 2')
      busy.stdout.resume()
      busy.stderr.resume()
      for (const stdin of [undefined, Readable.from([])]) {
        const t0 = Date.now()
        await expect(c.exec('echo x', { timeout: 300, stdin })).rejects.toBeInstanceOf(TimeoutError)
        expect(Date.now() - t0).toBeLessThan(1500)
      }
    } finally {
      await c.close()
    }
  })

  it('maxBuffer stops at the limit, without waiting for the command', async () => {
    const t0 = Date.now()
    const e = await ssh.exec('head -c 100000000 /dev/zero; sleep 5', { stdin: Readable.from([]), maxBuffer: 1000 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(CommandError)
    expect((e as CommandError).reason).toBe('maxBuffer')
    expect((e as CommandError).stdout.length).toBe(1000)
    expect(Date.now() - t0).toBeLessThan(4_000)
  })

  it('a failing stdin rejects with its error instead of waiting for the rest of the input', async () => {
    const stdin = new Readable({ read() {} })
    const p = ssh.exec('cat', { stdin })
    stdin.push('partial ')
    setTimeout(() => stdin.destroy(new Error('the source failed')), 200)
    await expect(withTimeout(p, 10_000, 'exec')).rejects.toThrow('the source failed')
    // and the connection is fine
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
  })

  it('still gives the output and status of a command that reads all of its input', async () => {
    const r = await ssh.exec('wc -c; echo err >&2; exit 3', { stdin: Readable.from([Buffer.alloc(100_000, 1), 'abc']) })
    expect(r.stdout.toString().trim()).toBe('100003')
    expect(r.stderr.toString()).toBe('err\n')
    expect(r.code).toBe(3)
  })
})

describe("a listener that throws", () => {
  it("in 'exit' or 'close' is an uncaught exception, not an unhandled rejection, and close() still resolves", async () => {
    const dist = fileURLToPath(new URL('../dist/cjs/index.js', import.meta.url))
    const script = `
      const { connect } = require(${JSON.stringify(dist)})
      const seen = []
      process.on('uncaughtException', (e) => seen.push('uncaught ' + e.message))
      process.on('unhandledRejection', (e) => seen.push('unhandled ' + e.message))
      ;(async () => {
        const c = await connect(${JSON.stringify(options())})
        const p = c.spawn('true')
        p.on('exit', () => { throw new Error('exit listener') })
        await p.exited
        c.on('close', () => { throw new Error('close listener') })
        const closed = await c.close().then(() => 'resolved', (e) => 'rejected ' + e.message)
        await new Promise((r) => setTimeout(r, 100))
        console.log(JSON.stringify({ closed, seen }))
      })()
    `
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 20_000 })
    const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}')
    expect(r.closed).toBe('resolved')
    expect(r.seen.sort()).toEqual(['uncaught close listener', 'uncaught exit listener'])
  })
})
