import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'

import { connect, DisconnectError, SshError, type ConnectOptions, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

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

const MiB = 1024 * 1024

function collect(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.once('end', () => resolve(Buffer.concat(chunks)))
    stream.once('error', reject)
  })
}

/** Settles to 'pending' if `p` has not settled within `ms`. */
async function stateAfter(p: Promise<unknown>, ms: number): Promise<'pending' | 'resolved' | 'rejected'> {
  return Promise.race([
    p.then(() => 'resolved' as const, () => 'rejected' as const),
    sleep(ms).then(() => 'pending' as const),
  ])
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const t = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms) })
  return Promise.race([p, t]).finally(() => clearTimeout(timer))
}

describe('stdin and stdout', () => {
  it('20 MiB of random data round-trips through cat with pipeline()', async () => {
    const data = randomBytes(20 * MiB)
    const want = createHash('sha256').update(data).digest('hex')
    const p = ssh.spawn('cat')
    // uneven chunk sizes, so batching on either side cannot hide an off-by-one
    const chunks: Buffer[] = []
    for (let off = 0, i = 0; off < data.length; i++) {
      const n = Math.min(data.length - off, 1 + ((i * 7919) % (300 * 1024)))
      chunks.push(data.subarray(off, off + n))
      off += n
    }
    const hash = createHash('sha256')
    let received = 0
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) { hash.update(chunk); received += chunk.length; cb() },
    })
    p.stderr.resume()
    await Promise.all([pipeline(Readable.from(chunks), p.stdin), pipeline(p.stdout, sink)])
    expect(received).toBe(data.length)
    expect(hash.digest('hex')).toBe(want)
    expect(await p.exited).toEqual({ code: 0, signal: null })
  }, 60_000)

  it('when exited settles, a flowing stdout has received every byte (the status may come before the last output)', async () => {
    for (let i = 0; i < 8; i++) {
      const p = ssh.spawn('head -c 3000000 /dev/zero')
      let n = 0
      p.stdout.on('data', (c: Buffer) => { n += c.length })
      expect(await p.exited).toEqual({ code: 0, signal: null })
      expect(n).toBe(3000000)
    }
  }, 60_000)

  it('stderr stays apart from stdout, each in order', async () => {
    const p = ssh.spawn('for i in $(seq 1 3000); do echo o$i; echo e$i >&2; done')
    const [out, err, status] = await Promise.all([collect(p.stdout), collect(p.stderr), p.exited])
    const seq = (prefix: string): string => Array.from({ length: 3000 }, (_, i) => `${prefix}${i + 1}\n`).join('')
    expect(out.toString()).toBe(seq('o'))
    expect(err.toString()).toBe(seq('e'))
    expect(status).toEqual({ code: 0, signal: null })
  })
})

describe('large writes are sent from the caller\'s Buffer', () => {
  const write = (w: Writable, b: Buffer): Promise<void> => new Promise((resolve, reject) => { w.write(b, (e) => (e ? reject(e) : resolve())) })
  const remoteDigest = async (p: ReturnType<SshClient['spawn']>): Promise<string> => (await collect(p.stdout)).toString().split(' ')[0]

  it('a Buffer refilled as soon as its write callback runs never changes bytes already written', async () => {
    const p = ssh.spawn('sha256sum')
    p.stderr.resume()
    const digest = remoteDigest(p)
    const want = createHash('sha256')
    const buf = Buffer.alloc(512 * 1024)
    for (let i = 0; i < 48; i++) {
      buf.fill(97 + (i % 26))
      buf.writeUInt32BE(i, 0)
      want.update(buf)
      // the callback must wait until these bytes are on their way: refilling at once would
      // otherwise change what the server reads
      await write(p.stdin, buf)
    }
    p.stdin.end()
    expect(await withTimeout(digest, 30_000, 'sha256sum')).toBe(want.digest('hex'))
    expect(await p.exited).toEqual({ code: 0, signal: null })
  }, 60_000)

  it('gathered writes of small and large chunks arrive in order', async () => {
    const p = ssh.spawn('sha256sum')
    p.stderr.resume()
    const digest = remoteDigest(p)
    const want = createHash('sha256')
    for (let round = 0; round < 4; round++) {
      p.stdin.cork()
      const done: Promise<void>[] = []
      for (let i = 0; i < 24; i++) {
        // sizes on both sides of the lending threshold, so one writev mixes copies and loans
        const chunk = randomBytes(i % 3 === 0 ? 100 * 1024 + i : 1 + i * 37)
        want.update(chunk)
        done.push(write(p.stdin, chunk))
      }
      p.stdin.uncork()
      await Promise.all(done)
    }
    p.stdin.end()
    expect(await withTimeout(digest, 30_000, 'sha256sum')).toBe(want.digest('hex'))
  }, 60_000)

  it('stdin and a shell take 4 MiB of writes before write() asks the caller to wait (README)', async () => {
    const conn = await connect(options())
    try {
      const chunk = Buffer.alloc(256 * 1024, 10) // empty lines, harmless to a shell
      // corked: no chunk reaches the channel (which may send and call back a write at once),
      // so this measures the stream's own mark
      const accepted = (w: Writable): number => {
        w.cork()
        let n = 0
        while (n < 64 && w.write(chunk)) n++
        w.uncork()
        return (n + 1) * chunk.length
      }
      const p = conn.spawn('exec sleep 60')
      p.stdout.resume()
      p.stderr.resume()
      expect(accepted(p.stdin)).toBe(4 * MiB)
      const sh = await conn.shell()
      sh.resume()
      sh.stderr.resume()
      expect(accepted(sh)).toBe(4 * MiB)
      await p.kill('KILL')
      sh.destroy()
    } finally {
      await conn.close()
    }
  }, 60_000)

  it('a large write waiting for a command that never reads is called back when the channel ends', async () => {
    const conn = await connect(options())
    try {
      const p = conn.spawn('exec sleep 60')
      p.stderr.resume()
      p.stdout.resume()
      const big = Buffer.alloc(4 * MiB, 1)
      // the server's window (and its pipe to `sleep`) fills: these callbacks stay pending
      const writes = [write(p.stdin, big), write(p.stdin, big)]
      writes.forEach((w) => w.catch(() => {}))
      expect(await stateAfter(writes[1], 1000)).toBe('pending')
      await p.kill('KILL')
      expect(await withTimeout(p.exited, 10_000, 'exit after KILL')).toEqual({ code: null, signal: 'KILL' })
      // the buffers are given back and nothing hangs; bytes that never went out are an error,
      // not a silent success
      const settled = await withTimeout(Promise.allSettled(writes), 10_000, 'pending write callbacks')
      expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected'])
      const why = (settled[0] as PromiseRejectedResult).reason as Error
      expect(why).toBeInstanceOf(SshError)
      expect(why.message).toMatch(/closed before all of its input was sent/)
      expect((await conn.exec('echo ok')).stdout.toString()).toBe('ok\n')
    } finally {
      await conn.close()
    }
  }, 60_000)
})

describe('backpressure', () => {
  it('a paused 1 GiB stdout keeps memory bounded and the command waiting; all of it arrives on resume', async () => {
    const conn = await connect(options())
    try {
      const total = 1024 * MiB
      const p = conn.spawn(`head -c ${total} /dev/zero`)
      p.stderr.resume()
      global.gc?.()
      const baseline = process.memoryUsage.rss()
      // nobody reads stdout: the server must be held back by the SSH window, not by our memory
      expect(await stateAfter(p.exited, 4000)).toBe('pending')
      const grown = process.memoryUsage.rss() - baseline
      expect(grown).toBeLessThan(100 * MiB)

      // a second channel opened while the first is over its mark must not deadlock once
      // the reader comes back (it may have to wait until then)
      const other = conn.exec('echo ok')
      other.catch(() => {})

      const zeros = Buffer.alloc(2 * MiB)
      let received = 0
      let allZero = true
      let peak = 0
      const sink = new Writable({
        highWaterMark: MiB,
        write(chunk: Buffer, _enc, cb) {
          for (let off = 0; off < chunk.length; off += zeros.length) {
            const part = chunk.subarray(off, off + zeros.length)
            if (!part.equals(zeros.subarray(0, part.length))) allZero = false
          }
          received += chunk.length
          if ((received & (64 * MiB - 1)) < chunk.length) peak = Math.max(peak, process.memoryUsage.rss() - baseline)
          cb()
        },
      })
      await withTimeout(pipeline(p.stdout, sink), 50_000, 'reading 1 GiB')
      expect(received).toBe(total)
      expect(allZero).toBe(true)
      expect(peak).toBeLessThan(200 * MiB)
      expect(await p.exited).toEqual({ code: 0, signal: null })
      expect((await withTimeout(other, 10_000, 'exec after resume')).stdout.toString()).toBe('ok\n')
    } finally {
      await conn.close()
    }
  }, 90_000)

  it('another channel on the same connection keeps working while a paused one is below its mark', async () => {
    const conn = await connect(options({ highWaterMark: 64 * MiB }))
    try {
      const size = 16 * MiB
      // the command finishes: its 16 MiB, EOF and exit status all wait unread in our buffer
      const p = conn.spawn(`f=$(mktemp); head -c ${size} /dev/urandom > $f; cat $f; sha256sum < $f >&2; rm -f $f`)
      // stderr (the digest) is read; stdout stays paused
      const digest = collect(p.stderr)
      expect(await withTimeout(p.exited, 20_000, 'command end with stdout paused')).toEqual({ code: 0, signal: null })

      const t0 = Date.now()
      const results = await withTimeout(Promise.all(Array.from({ length: 5 }, (_, i) => conn.exec(`echo ok${i}`))), 10_000, 'exec beside a paused channel')
      expect(results.map((r) => r.stdout.toString())).toEqual(['ok0\n', 'ok1\n', 'ok2\n', 'ok3\n', 'ok4\n'])
      expect(Date.now() - t0).toBeLessThan(5000)

      const out = await collect(p.stdout)
      expect(out.length).toBe(size)
      expect(createHash('sha256').update(out).digest('hex')).toBe((await digest).toString().split(' ')[0])
    } finally {
      await conn.close()
    }
  }, 60_000)
})

describe('closing a connection that waits for a reader', () => {
  it('close() settles at once while a stream is paused at its mark and other channels have writes queued', async () => {
    const conn = await connect(options())
    // the other channels are open before the stall
    const sftp = await withTimeout(conn.sftp(), 10_000, 'sftp before the stall')
    const ws = sftp.createWriteStream('/dev/null')
    await withTimeout(new Promise((r) => ws.once('ready', r)), 10_000, 'write stream open')
    const quiet = conn.spawn('cat > /dev/null')
    await withTimeout(conn.exec('true'), 10_000, 'exec before the stall')
    // stdout never read: the connection stops at its mark (README: the whole connection waits)
    const p = conn.spawn('head -c 256M /dev/zero')
    p.stdout.pause()
    const errors: Error[] = []
    for (const s of [p.stdout, p.stderr, quiet.stdin, quiet.stdout, ws]) s.on('error', (e: Error) => errors.push(e))
    p.exited.catch(() => {})
    quiet.exited.catch(() => {})
    await sleep(1000)
    // writes queued behind the stalled event loop, on two other channels
    for (let i = 0; i < 16; i++) {
      quiet.stdin.write(Buffer.alloc(MiB))
      ws.write(Buffer.alloc(MiB))
    }
    await sleep(500)
    const t0 = Date.now()
    await withTimeout(conn.close(), 5000, 'close() of a stalled connection')
    // not even the close's own 3 s bound: the reader's pause is released first
    expect(Date.now() - t0).toBeLessThan(2000)
    await withTimeout(conn.closed, 1000, 'closed after close()')
    // what was cut short by our own close says so
    const e = await withTimeout(quiet.exited.then(() => null, (x: Error) => x), 5000, 'exited after close()')
    expect(e).toMatchObject({ name: 'DisconnectError', reason: 'closed' })
  }, 30_000)
})

describe('read buffers', () => {
  it('an open channel that has carried little output holds a small read buffer, not a full-size one per stream', async () => {
    const conn = await connect(options())
    try {
      const before = process.memoryUsage().arrayBuffers
      const ps = Array.from({ length: 8 }, () => conn.spawn('cat'))
      // each echo proves its channel open and its readers armed with their buffers
      await withTimeout(Promise.all(ps.map(async (p, i) => {
        const got = new Promise<string>((resolve) => p.stdout.once('data', (c: Buffer) => resolve(c.toString())))
        p.stdin.write(`hi${i}`)
        expect(await got).toBe(`hi${i}`)
      })), 10_000, 'echo through 8 channels')
      const held = process.memoryUsage().arrayBuffers - before
      // 16 streams with a full-size (1 MiB) buffer each held 17 MiB here; small ones, well under 1
      expect(held).toBeLessThan(2 * MiB)
      for (const p of ps) p.stdin.end()
      expect((await Promise.all(ps.map((p) => p.exited))).map((e) => e.code)).toEqual(Array(8).fill(0))
    } finally {
      await conn.close()
    }
  })

  it('bulk output moves the stream to full-size batches: every byte arrives, in chunks far larger than the first buffer', async () => {
    const size = 64 * MiB
    const p = ssh.spawn(`head -c ${size} /dev/zero`)
    p.stdin.end()
    const sizes: number[] = []
    let nonzero = 0
    p.stdout.on('data', (c: Buffer) => {
      sizes.push(c.length)
      if (c.some((b) => b !== 0)) nonzero++
    })
    await withTimeout(new Promise((resolve, reject) => { p.stdout.once('end', resolve); p.stdout.once('error', reject) }), 30_000, '64 MiB download')
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(size)
    expect(nonzero).toBe(0)
    // a stream stuck on its first, small buffer would never deliver more than 16 KiB at once;
    // with the full-size one, batches reach the wake threshold (1 MiB) unless the output comes in
    // short packets, each waking the reader early, so only well past 16 KiB is asserted
    expect(Math.max(...sizes)).toBeGreaterThan(256 * 1024)
    expect((await p.exited).code).toBe(0)
  }, 60_000)
})

describe('connection cut', () => {
  it('destroys open streams with DisconnectError, rejects exited and pending calls, emits close with the error', async () => {
    const conn = await connect(options())
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown): void => { unhandled.push(e) }
    process.on('unhandledRejection', onUnhandled)
    try {
      const closeEvent = new Promise<Error | undefined>((resolve) => conn.once('close', resolve))
      const p = conn.spawn('sleep 60')
      const events: string[] = []
      const streamError = new Promise<Error>((resolve) => {
        p.stdout.on('data', () => events.push('data'))
        p.stdout.on('end', () => events.push('end'))
        p.stdout.once('error', (e) => { events.push('error'); resolve(e) })
      })
      // make sure the channel is open before the cut
      expect((await conn.exec('echo up')).stdout.toString()).toBe('up\n')
      const pending = conn.exec('sleep 60')
      pending.catch(() => {})
      await sleep(200)

      // $PPID of the command is the sshd session process that serves this connection
      const killer = await conn.exec('kill -9 $PPID').then(() => null, (e: Error) => e)
      expect(killer).toBeInstanceOf(DisconnectError)

      const err = await withTimeout(streamError, 10_000, 'stdout error')
      expect(err).toBeInstanceOf(DisconnectError)
      expect((err as DisconnectError).code).toBe('ERR_SSH_DISCONNECTED')
      expect(events).not.toContain('end')
      expect(p.stdout.destroyed).toBe(true)

      const exitErr = await p.exited.then(() => null, (e: Error) => e)
      expect(exitErr).toBeInstanceOf(DisconnectError)
      const pendingErr = await withTimeout(pending.then(() => null, (e: Error) => e), 10_000, 'pending exec')
      expect(pendingErr).toBeInstanceOf(DisconnectError)

      const closeErr = await withTimeout(closeEvent, 10_000, "'close' event")
      expect(closeErr).toBeInstanceOf(DisconnectError)
      expect(await conn.closed).toBe(closeErr)
      expect(conn.isClosed).toBe(true)

      // a call after the cut fails at once with the same kind of error
      const after = await conn.exec('true').then(() => null, (e: Error) => e)
      expect(after).toBeInstanceOf(DisconnectError)

      await sleep(100)
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await conn.close().catch(() => {})
    }
  }, 60_000)
})
