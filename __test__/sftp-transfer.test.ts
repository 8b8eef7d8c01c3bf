// SFTP bulk data against the real OpenSSH sshd: download/upload and the read/write streams
// checked by sha256 at awkward sizes, a sparse file past 4 GiB, stream ranges and back
// pressure, progress, abort/resume/keepPartial, a server killed mid-transfer, directory trees
// and concurrent transfers on one session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chmodSync, copyFileSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, closeSync, rmSync, statSync, symlinkSync, writeFileSync, createReadStream as createLocalReadStream } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'

import { AbortError, connect, DisconnectError, SftpError, type ConnectOptions, type SftpClient, type SshClient, type TransferProgress } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import { rejection, until, withTimeout } from './fixtures/helpers'
import { collect, GiB, ioOf, KiB, MiB, mkdirOwned, openFiles, ownerOf, randomFile, sftpServerPid, sha256, sha256File, sha256Stream, sizeOf, writeOwned, type Owner } from './fixtures/sftp-helpers'

let sshd: Sshd
let ssh: SshClient
let sftp: SftpClient
let user: Owner
/** Remote work directory (also a local path: same machine), owned by the test user. */
let work: string
/** Local scratch directory of the client side. */
let local: string

const BIG = 100 * MiB
const SLOW = 120_000

const options = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: sshd.host, port: sshd.port, username: sshd.user,
  privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile }, ...extra,
})

beforeAll(async () => {
  sshd = await startSshd()
  user = ownerOf(sshd.home)
  work = posix.join(sshd.home, `sftp-xfer-${process.pid}-${randomBytes(4).toString('hex')}`)
  mkdirOwned(work, user)
  local = mkdtempSync(join(tmpdir(), 'ferrossh-sftp-'))
  ssh = await connect(options())
  sftp = await ssh.sftp()
})
afterAll(async () => {
  await sftp?.close()
  await ssh?.close()
  await sshd?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
  if (local) rmSync(local, { recursive: true, force: true })
})

let seq = 0
const name = (base: string): string => `${base}-${++seq}`

interface Pair { local: string; remote: string; sha: string; size: number }
const pairs = new Map<number, Pair>()
/** The same random content of `size` bytes as a local file and as a server-side file. */
function pair(size: number): Pair {
  let p = pairs.get(size)
  if (!p) {
    const l = join(local, `src-${size}`)
    const sha = randomFile(l, size)
    const r = posix.join(work, `src-${size}`)
    copyFileSync(l, r)
    chownSync(r, user.uid, user.gid)
    p = { local: l, remote: r, sha, size }
    pairs.set(size, p)
  }
  return p
}

const partialOf = (p: string): string => `${p}.ferrossh-partial`

function isTyped(e: unknown): boolean {
  return e instanceof SftpError || e instanceof DisconnectError
}

/** Records, while a transfer runs, every sighting of `dest` with other than `size` bytes. */
function watchFinalName(dest: string, size: number): { stop(): { bad: number[]; sawPartial: number } } {
  const bad: number[] = []
  let sawPartial = 0
  const t = setInterval(() => {
    const n = sizeOf(dest)
    if (n !== -1 && n !== size) bad.push(n)
    sawPartial = Math.max(sawPartial, sizeOf(partialOf(dest)))
  }, 1)
  return { stop: () => { clearInterval(t); return { bad, sawPartial } } }
}

function checkProgress(calls: TransferProgress[], total: number): void {
  expect(calls.length).toBeGreaterThanOrEqual(1)
  for (const c of calls) {
    expect(typeof c.transferred).toBe('number')
    expect(c.total).toBe(total)
    expect(c.transferred).toBeLessThanOrEqual(total)
  }
  for (let i = 1; i < calls.length; i++) expect(calls[i].transferred).toBeGreaterThanOrEqual(calls[i - 1].transferred)
  expect(calls.at(-1)).toEqual({ transferred: total, total })
}

const SIZES = [0, 1, 255 * KiB - 1, 255 * KiB, 255 * KiB + 1, BIG]

describe.each(SIZES)('sha256 round trips of %i bytes', (size) => {
  const timeout = size === BIG ? SLOW : 30_000
  it('upload', async () => {
    const p = pair(size)
    const dest = posix.join(work, name(`up-${size}`))
    expect(await sftp.upload(p.local, dest)).toBe(size)
    expect(await sha256File(dest)).toBe(p.sha)
    const st = statSync(dest)
    expect(st.size).toBe(size)
    expect(st.mode & 0o777).toBe(0o644)
    expect(st.uid).toBe(user.uid)
    expect(existsSync(partialOf(dest))).toBe(false)
  }, timeout)
  it('download', async () => {
    const p = pair(size)
    const dest = join(local, name(`down-${size}`))
    expect(await sftp.download(p.remote, dest)).toBe(size)
    expect(statSync(dest).size).toBe(size)
    expect(await sha256File(dest)).toBe(p.sha)
    expect(existsSync(partialOf(dest))).toBe(false)
  }, timeout)
  it('createReadStream', async () => {
    const p = pair(size)
    const { hash, bytes } = await sha256Stream(sftp.createReadStream(p.remote))
    expect(bytes).toBe(size)
    expect(hash).toBe(p.sha)
  }, timeout)
  it('createWriteStream', async () => {
    const p = pair(size)
    const dest = posix.join(work, name(`ws-${size}`))
    // an odd chunk size, so the writer has to re-split at its request size
    await pipeline(createLocalReadStream(p.local, { highWaterMark: 100_003 }), sftp.createWriteStream(dest))
    expect(statSync(dest).size).toBe(size)
    expect(await sha256File(dest)).toBe(p.sha)
  }, timeout)
})

describe('a sparse file over 4 GiB', () => {
  const SIZE = 5 * GiB
  const AT_4_5 = 4.5 * GiB
  const FOUR = 4 * GiB
  let f: string
  beforeAll(async () => {
    f = posix.join(work, 'sparse-5g')
    const q = (n: number, text: string): string => `printf '%s' '${text}' | dd of="$f" bs=1 seek=${n} conv=notrunc status=none`
    const script = [
      `f='${f}'`,
      'truncate -s 5G "$f"',
      q(AT_4_5, 'AT4.5G'),
      q(FOUR - 4, 'CROSS4G!'),
      q(SIZE - 4, 'TAIL'),
    ].join(' && ')
    const r = await ssh.exec(script)
    expect(r.stderr.toString()).toBe('')
    expect(r.code).toBe(0)
    expect(statSync(f).size).toBe(SIZE)
    expect(statSync(f).blocks * 512).toBeLessThan(10 * MiB) // really sparse
  })
  it('stat size > 4 GiB, as a number and with { bigint: true }', async () => {
    expect((await sftp.stat(f)).size).toBe(SIZE)
    const big = await sftp.stat(f, { bigint: true })
    expect(typeof big.size).toBe('bigint')
    expect(big.size).toBe(5368709120n)
    expect((await sftp.lstat(f, { bigint: true })).size).toBe(5368709120n)
    const h = await sftp.open(f)
    expect((await h.stat({ bigint: true })).size).toBe(5368709120n)
    await h.close()
    const entry = (await sftp.readdir(work, { withFileTypes: true })).find((e) => e.name === 'sparse-5g')
    expect(entry?.stats.size).toBe(SIZE)
  })
  it('createReadStream({ start, end }) near 4.5 GiB', async () => {
    const got = await collect(sftp.createReadStream(f, { start: AT_4_5 - 16, end: AT_4_5 + 21 }))
    expect(got).toEqual(Buffer.concat([Buffer.alloc(16), Buffer.from('AT4.5G'), Buffer.alloc(16)]))
  }, SLOW)
  it('createReadStream across the 4 GiB boundary, and to the end of the file', async () => {
    const got = await collect(sftp.createReadStream(f, { start: FOUR - 8, end: FOUR + 7 }))
    expect(got).toEqual(Buffer.concat([Buffer.alloc(4), Buffer.from('CROSS4G!'), Buffer.alloc(4)]))
    expect(await collect(sftp.createReadStream(f, { start: SIZE - 6 }))).toEqual(Buffer.from('\0\0TAIL'))
    expect((await collect(sftp.createReadStream(f, { start: SIZE + 10 }))).length).toBe(0)
  }, SLOW)
  it('FileHandle.read at offsets past 4 GiB', async () => {
    const h = await sftp.open(f)
    try {
      const b = Buffer.alloc(6)
      expect((await h.read(b, 0, 6, AT_4_5)).bytesRead).toBe(6)
      expect(b.toString()).toBe('AT4.5G')
      const c = Buffer.alloc(8)
      expect((await h.read(c, 0, 8, FOUR - 4)).bytesRead).toBe(8)
      expect(c.toString()).toBe('CROSS4G!')
      const t = Buffer.alloc(10)
      expect((await h.read(t, 0, 10, SIZE - 2)).bytesRead).toBe(2)
      expect(t.subarray(0, 2).toString()).toBe('IL')
      expect((await h.read(t, 0, 10, SIZE + 100)).bytesRead).toBe(0)
    } finally {
      await h.close()
    }
  }, SLOW)
  it('FileHandle.write past 4 GiB lands at that offset; truncate to a size past 4 GiB', async () => {
    const at = 4.75 * GiB + 3
    const h = await sftp.open(f, 'r+')
    await h.write('W>4G', at)
    await h.close()
    const fd = openSync(f, 'r')
    const b = Buffer.alloc(6)
    readSync(fd, b, 0, 6, at - 1)
    closeSync(fd)
    expect(b).toEqual(Buffer.from('\0W>4G\0'))
    expect(statSync(f).size).toBe(SIZE)
    await sftp.truncate(f, FOUR + 10)
    expect(statSync(f).size).toBe(FOUR + 10)
    expect((await sftp.stat(f)).size).toBe(FOUR + 10)
  }, SLOW)
})

describe('read and write streams', () => {
  it('createReadStream start/end are inclusive slices', async () => {
    const data = randomBytes(MiB + 777)
    const f = posix.join(work, name('slices'))
    writeOwned(f, data, user)
    const cases: [number | undefined, number | undefined][] = [
      [0, 0], [10, 19], [undefined, 99], [MiB, undefined], [255 * KiB - 1, 255 * KiB + 1],
      [100, 3 * 255 * KiB + 5], [data.length - 1, undefined], [data.length - 10, data.length + 1000], [0, data.length - 1],
    ]
    for (const [start, end] of cases) {
      const got = await collect(sftp.createReadStream(f, { start, end }))
      const want = data.subarray(start ?? 0, end === undefined ? undefined : end + 1)
      expect(got.length, `start ${start} end ${end}`).toBe(want.length)
      expect(got.equals(want), `start ${start} end ${end}`).toBe(true)
    }
    expect((await collect(sftp.createReadStream(f, { start: data.length }))).length).toBe(0)
    expect((await collect(sftp.createReadStream(f, { start: data.length + 5, end: data.length + 10 }))).length).toBe(0)
  })
  it('several reads in flight or one: same bytes', async () => {
    const p = pair(255 * KiB + 1)
    for (const concurrency of [1, 3, 64]) {
      const { hash } = await sha256Stream(sftp.createReadStream(p.remote, { concurrency, highWaterMark: 64 * KiB }))
      expect(hash).toBe(p.sha)
    }
  })
  it('several writes in flight or one: same bytes', async () => {
    const p = pair(255 * KiB + 1)
    for (const concurrency of [1, 3, 64]) {
      const dest = posix.join(work, name('ws-conc'))
      await pipeline(createLocalReadStream(p.local, { highWaterMark: 10_007 }), sftp.createWriteStream(dest, { concurrency }))
      expect(await sha256File(dest)).toBe(p.sha)
    }
  })
  it('highWaterMark is honoured: a paused reader stops the reading, and memory stays bounded', async () => {
    const p = pair(BIG)
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const read0 = ioOf(pid).rchar
      const rss0 = process.memoryUsage().rss
      const rs = s.createReadStream(p.remote, { highWaterMark: 256 * KiB, concurrency: 2 })
      await withTimeout(new Promise((r) => rs.once('readable', r)), 10_000, 'first data')
      await sleep(1500) // nobody reads: the stream must stop
      const readByServer = ioOf(pid).rchar - read0
      expect(readByServer).toBeGreaterThan(0)
      expect(readByServer).toBeLessThan(16 * MiB)
      expect(rs.readableLength).toBeLessThanOrEqual(256 * KiB + 1100 * KiB)
      expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * MiB)
      await sleep(500)
      expect(ioOf(pid).rchar - read0 - readByServer).toBeLessThan(MiB) // and stays stopped
      // nothing was lost while paused
      const { hash, bytes } = await sha256Stream(rs)
      expect(bytes).toBe(BIG)
      expect(hash).toBe(p.sha)
    } finally {
      await conn.close()
    }
  }, SLOW)
  it('destroying a read stream mid-file closes the remote handle', async () => {
    const p = pair(BIG)
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      // a stream read to its end releases its handle
      const small = pair(255 * KiB + 1)
      expect((await sha256Stream(s.createReadStream(small.remote))).hash).toBe(small.sha)
      await until(() => !openFiles(pid).includes(small.remote), 5000, 'handle of a finished stream closed', () => openFiles(pid))
      const rs = s.createReadStream(p.remote, { highWaterMark: 256 * KiB })
      await withTimeout(new Promise((r) => rs.once('readable', r)), 10_000, 'first data')
      expect(openFiles(pid)).toContain(p.remote)
      rs.destroy()
      await until(() => !openFiles(pid).includes(p.remote), 5000, 'remote handle closed', () => openFiles(pid))
      expect((await s.stat(p.remote)).size).toBe(BIG) // the session is still fine
    } finally {
      await conn.close()
    }
  }, SLOW)
  it('createReadStream of a missing file errors with ENOENT and the path', async () => {
    const m = posix.join(work, 'missing-for-stream')
    const e = await rejection(collect(sftp.createReadStream(m)))
    expect(e).toBeInstanceOf(SftpError)
    expect(e.code).toBe('ENOENT')
    expect(e.status).toBe(2)
    expect(e.path).toBe(m)
  })
  it('createWriteStream: many small writes arrive in order; finish means all landed', async () => {
    const f = posix.join(work, name('small-writes'))
    const ws = sftp.createWriteStream(f)
    const parts: Buffer[] = []
    for (let i = 0; i < 5000; i++) {
      const b = randomBytes(1 + (i * 37) % 300)
      parts.push(b)
      if (!ws.write(b)) await new Promise((r) => ws.once('drain', r))
    }
    await new Promise<void>((resolve, reject) => { ws.once('error', reject); ws.end(resolve) })
    expect(readFileSync(f).equals(Buffer.concat(parts))).toBe(true)
  })
  it("createWriteStream flags 'a': many requests in flight still land in order (the server appends in arrival order)", async () => {
    const f = posix.join(work, name('append-many'))
    writeOwned(f, 'head:', user)
    const parts: Buffer[] = []
    for (let i = 0; i < 40; i++) parts.push(randomBytes(100_000 + i * 997))
    await pipeline(async function* () { yield* parts }, sftp.createWriteStream(f, { flags: 'a', concurrency: 16 }))
    expect(readFileSync(f).equals(Buffer.concat([Buffer.from('head:'), ...parts]))).toBe(true)
  })
  it("createWriteStream flags: 'a' appends, 'r+' with start overwrites in place, mode on creation", async () => {
    const f = posix.join(work, name('flags'))
    writeOwned(f, 'abcdefgh', user)
    await pipeline(async function* () { yield Buffer.from('1234') }, sftp.createWriteStream(f, { flags: 'a' }))
    expect(readFileSync(f, 'utf8')).toBe('abcdefgh1234')
    await pipeline(async function* () { yield Buffer.from('XY') }, sftp.createWriteStream(f, { flags: 'r+', start: 3 }))
    expect(readFileSync(f, 'utf8')).toBe('abcXYfgh1234')
    const g = posix.join(work, name('mode'))
    await pipeline(async function* () { yield Buffer.from('m') }, sftp.createWriteStream(g, { mode: 0o600 }))
    expect(statSync(g).mode & 0o777).toBe(0o600)
  })
  it("createWriteStream on a path that cannot be opened errors at once, before any write, as fs's does", async () => {
    const w = sftp.createWriteStream(posix.join(work, 'no-such-dir', 'f'))
    const e = await withTimeout(new Promise<Error>((r) => w.once('error', r)), 5000, "the stream's error")
    expect(e).toBeInstanceOf(SftpError)
    expect((e as unknown as SftpError).code).toBe('ENOENT')
  })
  it("createWriteStream 'wx' on an existing file errors with EEXIST and leaves it alone", async () => {
    const f = posix.join(work, name('exists'))
    writeOwned(f, 'keep', user)
    const e = await rejection(pipeline(async function* () { yield Buffer.from('clobber') }, sftp.createWriteStream(f, { flags: 'wx' })))
    expect(e).toBeInstanceOf(SftpError)
    expect(e.code).toBe('EEXIST')
    expect(e.path).toBe(f)
    expect(readFileSync(f, 'utf8')).toBe('keep')
  })
})

describe('download and upload', () => {
  it('download reports progress: increasing transferred, the right total, the last call = total', async () => {
    const p = pair(BIG)
    const calls: TransferProgress[] = []
    await sftp.download(p.remote, join(local, name('prog-down')), { onProgress: (x) => calls.push(x) })
    checkProgress(calls, BIG)
    expect(calls.length).toBeGreaterThanOrEqual(2)
  }, SLOW)
  it('upload reports progress: increasing transferred, the right total, the last call = total', async () => {
    const p = pair(BIG)
    const calls: TransferProgress[] = []
    await sftp.upload(p.local, posix.join(work, name('prog-up')), { onProgress: (x) => calls.push(x) })
    checkProgress(calls, BIG)
    expect(calls.length).toBeGreaterThanOrEqual(2)
  }, SLOW)
  it('progress of small files and of an empty file', async () => {
    for (const size of [0, 1, 255 * KiB + 1]) {
      const p = pair(size)
      const down: TransferProgress[] = []
      await sftp.download(p.remote, join(local, name('prog-small')), { onProgress: (x) => down.push(x) })
      checkProgress(down, size)
      const up: TransferProgress[] = []
      await sftp.upload(p.local, posix.join(work, name('prog-small')), { onProgress: (x) => up.push(x) })
      checkProgress(up, size)
    }
  })
  it('a throwing onProgress does not stop the transfer', async () => {
    const p = pair(255 * KiB + 1)
    const dest = join(local, name('throwing'))
    await sftp.download(p.remote, dest, { onProgress: () => { throw new Error('callback bug') } })
    expect(await sha256File(dest)).toBe(p.sha)
  })
  it('chunkSize and concurrency options give the same bytes', async () => {
    const p = pair(255 * KiB + 1)
    for (const o of [{ concurrency: 1, chunkSize: 1000 }, { concurrency: 7, chunkSize: 32 * KiB + 1 }, { concurrency: 256, chunkSize: 10 * MiB }]) {
      const down = join(local, name('opts'))
      expect(await sftp.download(p.remote, down, o)).toBe(p.size)
      expect(await sha256File(down)).toBe(p.sha)
      const up = posix.join(work, name('opts'))
      expect(await sftp.upload(p.local, up, o)).toBe(p.size)
      expect(await sha256File(up)).toBe(p.sha)
    }
  })
  it('fsync: the file is flushed before the rename (local on download, fsync@openssh.com on upload); same bytes', async () => {
    const p = pair(2 * MiB + 3)
    const down = join(local, name('fsync'))
    expect(await sftp.download(p.remote, down, { fsync: true })).toBe(p.size)
    expect(await sha256File(down)).toBe(p.sha)
    const up = posix.join(work, name('fsync'))
    expect(await sftp.upload(p.local, up, { fsync: true })).toBe(p.size)
    expect(await sha256File(up)).toBe(p.sha)
  })
  it('download replaces an existing local file; upload replaces an existing remote file', async () => {
    const p = pair(255 * KiB)
    const down = join(local, name('replace'))
    writeFileSync(down, randomBytes(MiB))
    await sftp.download(p.remote, down)
    expect(await sha256File(down)).toBe(p.sha)
    const up = posix.join(work, name('replace'))
    writeOwned(up, randomBytes(MiB), user)
    await sftp.upload(p.local, up)
    expect(await sha256File(up)).toBe(p.sha)
  })
  it('upload mode sets the permission bits of the new file', async () => {
    const p = pair(1)
    const up = posix.join(work, name('mode'))
    await sftp.upload(p.local, up, { mode: 0o600 })
    expect(statSync(up).mode & 0o777).toBe(0o600)
  })
  it('a file whose size says nothing (/proc) downloads and uploads to its end', async () => {
    const dest = join(local, name('proc-version'))
    expect(statSync('/proc/version').size).toBe(0)
    const want = readFileSync('/proc/version')
    expect(await sftp.download('/proc/version', dest)).toBe(want.length)
    expect(readFileSync(dest).equals(want)).toBe(true)
    const up = posix.join(work, name('proc-up'))
    expect(await sftp.upload('/proc/version', up)).toBe(want.length)
    expect(readFileSync(up).equals(want)).toBe(true)
  })
  it("upload without mode gives a new file the local file's permission bits; an existing one keeps its own, as sftp put does", async () => {
    const src = join(local, name('script'))
    writeFileSync(src, '#!/bin/sh\necho hi\n')
    chmodSync(src, 0o750)
    const up = posix.join(work, name('script-up'))
    await sftp.upload(src, up)
    expect(statSync(up).mode & 0o777).toBe(0o750)
    // over an existing private file: it stays private (even bits the server's umask would take off)
    for (const mode of [0o600, 0o666]) {
      const over = posix.join(work, name('private-up'))
      writeOwned(over, 'old', user)
      chmodSync(over, mode)
      chmodSync(src, 0o644)
      await sftp.upload(src, over)
      expect((statSync(over).mode & 0o777).toString(8)).toBe(mode.toString(8))
      expect(readFileSync(over, 'utf8')).toBe('#!/bin/sh\necho hi\n')
    }
    // an explicit mode wins
    const over = posix.join(work, name('moded-up'))
    writeOwned(over, 'old', user, 0o600)
    await sftp.upload(src, over, { mode: 0o640 })
    expect(statSync(over).mode & 0o777).toBe(0o640)
  })
  it("download gives the new file the remote file's permission bits, as sftp get does: a private file stays private", async () => {
    const umask = process.umask()
    try {
      process.umask(0o022)
      for (const mode of [0o600, 0o755, 0o640]) {
        const r = posix.join(work, name('mode-src'))
        writeOwned(r, 'secret', user, mode)
        const down = join(local, name('mode-down'))
        await sftp.download(r, down)
        expect((statSync(down).mode & 0o777).toString(8)).toBe(mode.toString(8))
      }
      // an existing file keeps its own bits, as sftp get leaves them: a private one stays private
      const r = posix.join(work, name('mode-src'))
      writeOwned(r, 'public', user, 0o644)
      for (const mode of [0o600, 0o666]) {
        const down = join(local, name('mode-over'))
        writeFileSync(down, 'old')
        chmodSync(down, mode)
        await sftp.download(r, down)
        expect((statSync(down).mode & 0o777).toString(8)).toBe(mode.toString(8))
        expect(readFileSync(down, 'utf8')).toBe('public')
      }
    } finally {
      process.umask(umask)
    }
  })
  it('a destination that is a symlink is written through: the file it names is replaced, the link stays, as sftp put/get do', async () => {
    const p = pair(10 * KiB)
    // upload onto a remote link
    const target = posix.join(work, name('up-target'))
    writeOwned(target, 'old', user)
    const link = posix.join(work, name('up-link'))
    symlinkSync(target, link)
    await sftp.upload(p.local, link)
    expect(lstatSync(link).isSymbolicLink()).toBe(true)
    expect(await sha256File(target)).toBe(p.sha)
    // download onto a local link, and onto a dangling one (its target is created)
    const lt = join(local, name('down-target'))
    writeFileSync(lt, 'old')
    const ll = join(local, name('down-link'))
    symlinkSync(lt, ll)
    await sftp.download(p.remote, ll)
    expect(lstatSync(ll).isSymbolicLink()).toBe(true)
    expect(await sha256File(lt)).toBe(p.sha)
    const dl = join(local, name('down-dangling'))
    symlinkSync('dangling-target', dl)
    await sftp.download(p.remote, dl)
    expect(lstatSync(dl).isSymbolicLink()).toBe(true)
    expect(await sha256File(join(local, 'dangling-target'))).toBe(p.sha)
  })
  it("copyFile gives a new file the source's permission bits, as fs.copyFile does", async () => {
    const r = posix.join(work, name('copy-src'))
    writeOwned(r, 'secret', user, 0o600)
    const to = posix.join(work, name('copy-dst'))
    await sftp.copyFile(r, to)
    expect(statSync(to).mode & 0o777).toBe(0o600)
  })
  it('failures: missing remote, missing local directory, missing local file, a directory, EACCES', async () => {
    const p = pair(1)
    const missing = posix.join(work, 'missing-remote')
    const dest = join(local, name('never'))
    let e = await rejection(sftp.download(missing, dest))
    expect([e.constructor, e.code, e.status, e.path]).toEqual([SftpError, 'ENOENT', 2, missing])
    expect(existsSync(dest) || existsSync(partialOf(dest))).toBe(false)
    e = await rejection(sftp.download(p.remote, join(local, 'no-such-dir', 'x')))
    expect([e.constructor, e.code]).toEqual([SftpError, 'ENOENT'])
    e = await rejection(sftp.upload(join(local, 'no-such-file'), posix.join(work, name('never'))))
    expect([e.constructor, e.code]).toEqual([SftpError, 'ENOENT'])
    e = await rejection(sftp.upload(local, posix.join(work, name('never'))))
    expect([e.constructor, e.code]).toEqual([SftpError, 'EISDIR'])
    const priv = posix.join(work, name('private'))
    mkdirSync(priv, { mode: 0o700 })
    e = await rejection(sftp.upload(p.local, posix.join(priv, 'x')))
    expect([e.constructor, e.code, e.status]).toEqual([SftpError, 'EACCES', 3])
  })
  it('download: the final name never exists with partial content', async () => {
    const p = pair(BIG)
    const dest = join(local, name('watched'))
    const w = watchFinalName(dest, BIG)
    await sftp.download(p.remote, dest, { concurrency: 4, chunkSize: 64 * KiB })
    const { bad, sawPartial } = w.stop()
    expect(bad).toEqual([])
    expect(sawPartial).toBeGreaterThan(0) // it was watching while the transfer ran
    expect(await sha256File(dest)).toBe(p.sha)
  }, SLOW)
  it('upload: the final name never exists with partial content', async () => {
    const p = pair(BIG)
    const dest = posix.join(work, name('watched'))
    const w = watchFinalName(dest, BIG)
    await sftp.upload(p.local, dest, { concurrency: 4, chunkSize: 64 * KiB })
    const { bad, sawPartial } = w.stop()
    expect(bad).toEqual([])
    expect(sawPartial).toBeGreaterThan(0)
    expect(await sha256File(dest)).toBe(p.sha)
  }, SLOW)
})

describe('abort, keepPartial and resume', () => {
  /** Starts a slow transfer and aborts it once its partial file has `bytes`. */
  async function abortedTransfer(kind: 'download' | 'upload', dest: string, extra: { keepPartial?: boolean; resume?: boolean } = {}, s: SftpClient = sftp): Promise<Error & Record<string, unknown>> {
    const p = pair(BIG)
    const ac = new AbortController()
    const slow = { concurrency: 1, chunkSize: 16 * KiB, signal: ac.signal, ...extra }
    const w = watchFinalName(dest, BIG)
    const t = kind === 'download' ? s.download(p.remote, dest, slow) : s.upload(p.local, dest, slow)
    t.catch(() => {})
    await until(() => sizeOf(partialOf(dest)) >= 4 * MiB, 60_000, `${kind} under way`, () => sizeOf(partialOf(dest)))
    ac.abort()
    const t0 = Date.now()
    const e = await rejection(t, 10_000)
    expect(Date.now() - t0).toBeLessThan(5000)
    const { bad } = w.stop()
    expect(bad).toEqual([])
    expect(e).toBeInstanceOf(AbortError)
    expect(e.name).toBe('AbortError')
    expect(e.code).toBe('ABORT_ERR')
    expect(existsSync(dest)).toBe(false)
    return e
  }
  /** The partial file is a proper prefix of the source. */
  async function checkPrefix(partial: string): Promise<number> {
    const n = sizeOf(partial)
    expect(n).toBeGreaterThan(0)
    expect(n).toBeLessThan(BIG)
    const fd = openSync(pair(BIG).local, 'r')
    const want = Buffer.alloc(n)
    readSync(fd, want, 0, n, 0)
    closeSync(fd)
    expect(readFileSync(partial).equals(want)).toBe(true)
    return n
  }

  it('an already aborted signal rejects at once and creates nothing', async () => {
    const p = pair(255 * KiB)
    const dest = join(local, name('pre-aborted'))
    const e = await rejection(sftp.download(p.remote, dest, { signal: AbortSignal.abort() }))
    expect(e).toBeInstanceOf(AbortError)
    expect(existsSync(dest) || existsSync(partialOf(dest))).toBe(false)
    const up = posix.join(work, name('pre-aborted'))
    expect(await rejection(sftp.upload(p.local, up, { signal: AbortSignal.abort() }))).toBeInstanceOf(AbortError)
    expect(existsSync(up) || existsSync(partialOf(up))).toBe(false)
  })
  it('download aborted mid-transfer: AbortError, and no partial file is left', async () => {
    const dest = join(local, name('abort-down'))
    await abortedTransfer('download', dest)
    expect(existsSync(partialOf(dest))).toBe(false)
  }, SLOW)
  it('upload aborted mid-transfer: AbortError, no partial file left, the remote handle released', async () => {
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const dest = posix.join(work, name('abort-up'))
      await abortedTransfer('upload', dest, {}, s)
      await until(() => !existsSync(partialOf(dest)), 5000, 'partial removed')
      await sleep(300)
      expect(existsSync(partialOf(dest))).toBe(false)
      expect(existsSync(dest)).toBe(false)
      await until(() => !openFiles(pid).some((f) => f.includes(posix.basename(dest))), 5000, 'remote handle released', () => openFiles(pid))
    } finally {
      await conn.close()
    }
  }, SLOW)
  it('download with keepPartial keeps <dest>.ferrossh-partial, a prefix of the file', async () => {
    const dest = join(local, name('keep-down'))
    await abortedTransfer('download', dest, { keepPartial: true })
    // once download() has rejected, nothing writes to the partial file any more
    const settled = await checkPrefix(partialOf(dest))
    await sleep(300)
    expect(sizeOf(partialOf(dest))).toBe(settled)
  }, SLOW)
  it('upload with keepPartial keeps <dest>.ferrossh-partial on the server, a prefix of the file', async () => {
    const dest = posix.join(work, name('keep-up'))
    await abortedTransfer('upload', dest, { keepPartial: true })
    await sleep(300) // writes already sent may still land
    await checkPrefix(partialOf(dest))
  }, SLOW)
  it('download resume: continues the partial file (only the rest is read) and the result is intact', async () => {
    const p = pair(BIG)
    const dest = join(local, name('resume-down'))
    await abortedTransfer('download', dest, { resume: true })
    const have = await checkPrefix(partialOf(dest))
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const read0 = ioOf(pid).rchar
      expect(await s.download(p.remote, dest, { resume: true })).toBeGreaterThan(0)
      const read = ioOf(pid).rchar - read0
      expect(read).toBeGreaterThanOrEqual(BIG - have)
      expect(read).toBeLessThan(BIG - have + 4 * MiB)
    } finally {
      await conn.close()
    }
    expect(existsSync(partialOf(dest))).toBe(false)
    expect(await sha256File(dest)).toBe(p.sha)
  }, SLOW)
  it('upload resume: continues the partial file (only the rest is written) and the result is intact', async () => {
    const p = pair(BIG)
    const dest = posix.join(work, name('resume-up'))
    await abortedTransfer('upload', dest, { resume: true })
    await sleep(300)
    const have = await checkPrefix(partialOf(dest))
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const written0 = ioOf(pid).wchar
      await s.upload(p.local, dest, { resume: true })
      const written = ioOf(pid).wchar - written0
      expect(written).toBeGreaterThanOrEqual(BIG - have)
      expect(written).toBeLessThan(BIG - have + 4 * MiB)
    } finally {
      await conn.close()
    }
    expect(existsSync(partialOf(dest))).toBe(false)
    expect(await sha256File(dest)).toBe(p.sha)
  }, SLOW)
  it('download resume from a partial file longer than the remote file starts over', async () => {
    const p = pair(255 * KiB)
    const down = join(local, name('resume-longer'))
    writeFileSync(partialOf(down), randomBytes(300 * KiB))
    expect(await sftp.download(p.remote, down, { resume: true })).toBe(255 * KiB)
    expect(await sha256File(down)).toBe(p.sha)
    expect(existsSync(partialOf(down))).toBe(false)
  })
  it('upload resume from a partial file longer than the local file starts over', async () => {
    const p = pair(255 * KiB)
    const up = posix.join(work, name('resume-longer-up'))
    writeOwned(partialOf(up), randomBytes(300 * KiB), user)
    expect(await sftp.upload(p.local, up, { resume: true })).toBe(255 * KiB)
    expect(await sha256File(up)).toBe(p.sha)
    expect(existsSync(partialOf(up))).toBe(false)
  })
  it('resume without a partial file is a plain transfer', async () => {
    const p = pair(255 * KiB + 1)
    const down = join(local, name('resume-none'))
    await sftp.download(p.remote, down, { resume: true })
    expect(await sha256File(down)).toBe(p.sha)
    const up = posix.join(work, name('resume-none'))
    await sftp.upload(p.local, up, { resume: true })
    expect(await sha256File(up)).toBe(p.sha)
  })
})

describe('the server killed mid-transfer', () => {
  type Kill = 'sftp-server' | 'connection'
  /** Kills the internal-sftp process (the SFTP channel ends) or the connection's sshd process (kill -9 $PPID from another channel). */
  function killer(how: Kill): (conn: SshClient, sftpPid: number) => void {
    return how === 'sftp-server' ? (_c, pid) => process.kill(pid, 'SIGKILL') : (c) => { c.exec('kill -9 $PPID').catch(() => {}) }
  }
  /**
   * Starts an operation on a fresh connection, kills the server side once `under()` holds,
   * and checks the operation fails with a typed error within 10 s; then runs `after`.
   */
  async function killedDuring(start: (s: SftpClient) => Promise<unknown>, under: () => boolean, how: Kill, after: (x: { error: Error & Record<string, unknown>; conn: SshClient; s: SftpClient }) => Promise<void> = async () => {}): Promise<void> {
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const t = start(s)
      t.catch(() => {})
      await until(under, 60_000, 'transfer under way')
      const t0 = Date.now()
      killer(how)(conn, pid)
      const error = await rejection(withTimeout(t, 15_000, 'the operation after the kill'), 20_000)
      expect(Date.now() - t0).toBeLessThan(10_000)
      expect(isTyped(error), `${error.name}: ${error.message}`).toBe(true)
      await after({ error, conn, s })
    } finally {
      await conn.close().catch(() => {})
    }
  }
  /** A request on the session after the kill fails with a typed error within 10 s too. */
  async function deadSessionFails(s: SftpClient): Promise<void> {
    const t0 = Date.now()
    const e = await rejection(withTimeout(s.stat(work), 15_000, 'stat on the dead session'), 20_000)
    expect(isTyped(e), `${e.name}: ${e.message}`).toBe(true)
    expect(Date.now() - t0).toBeLessThan(10_000)
  }

  for (const how of ['sftp-server', 'connection'] as const) {
    it(`download, ${how} killed: typed error within 10 s, no file left behind`, async () => {
      const p = pair(BIG)
      const dest = join(local, name('killed-down'))
      await killedDuring(
        (s) => s.download(p.remote, dest, { concurrency: 1, chunkSize: 16 * KiB }),
        () => sizeOf(partialOf(dest)) >= 2 * MiB,
        how,
        async ({ error, conn, s }) => {
          if (how === 'sftp-server') expect(error).toBeInstanceOf(SftpError)
          expect(existsSync(dest)).toBe(false)
          expect(existsSync(partialOf(dest))).toBe(false)
          await deadSessionFails(s)
          if (how === 'sftp-server') {
            // only the SFTP channel died: the connection serves a new session
            expect((await conn.exec('echo alive')).stdout.toString()).toBe('alive\n')
            expect((await (await conn.sftp()).stat(p.remote)).size).toBe(BIG)
          }
        },
      )
    }, SLOW)
    it(`upload, ${how} killed: typed error within 10 s, no file left behind`, async () => {
      const p = pair(BIG)
      const dest = posix.join(work, name('killed-up'))
      await killedDuring(
        (s) => s.upload(p.local, dest, { concurrency: 1, chunkSize: 16 * KiB }),
        () => sizeOf(partialOf(dest)) >= 2 * MiB,
        how,
        async ({ s }) => {
          expect(existsSync(dest)).toBe(false)
          await deadSessionFails(s)
        },
      )
    }, SLOW)
    it(`createReadStream, ${how} killed: the stream errors (never ends short) within 10 s`, async () => {
      const p = pair(BIG)
      let got = 0
      let ended = false
      await killedDuring(
        (s) => new Promise((resolve, reject) => {
          const rs = s.createReadStream(p.remote, { concurrency: 1, highWaterMark: 64 * KiB })
          rs.on('data', (c: Buffer) => { got += c.length })
          rs.once('error', reject)
          rs.once('end', () => { ended = true; resolve(undefined) })
        }),
        () => got >= 2 * MiB,
        how,
        async () => {
          expect(ended).toBe(false)
          expect(got).toBeLessThan(BIG)
        },
      )
    }, SLOW)
    it(`createWriteStream, ${how} killed: the stream errors within 10 s; bytesWritten counts only what landed, so a resume from it leaves no hole`, async () => {
      const p = pair(BIG)
      const dest = posix.join(work, name('killed-ws'))
      let ws: ReturnType<SftpClient['createWriteStream']> | undefined
      await killedDuring(
        (s) => pipeline(createLocalReadStream(p.local, { highWaterMark: 256 * KiB }), (ws = s.createWriteStream(dest, { concurrency: 16 }))),
        () => sizeOf(dest) >= 2 * MiB,
        how,
        async ({ error, conn }) => {
          const landed = ws!.bytesWritten
          expect(landed).toBeGreaterThan(0)
          expect(landed).toBeLessThanOrEqual(sizeOf(dest))
          // what the server confirmed is on disk, byte for byte
          const src = readFileSync(p.local)
          expect(readFileSync(dest).subarray(0, landed).equals(src.subarray(0, landed))).toBe(true)
          // the SFTP channel alone died: the error says so, not that the connection was lost
          if (how === 'sftp-server') expect(error.message).toContain('the SFTP channel closed')
          const again = how === 'sftp-server' ? conn : await connect(options())
          try {
            const s2 = await again.sftp()
            await pipeline(createLocalReadStream(p.local, { start: landed }), s2.createWriteStream(dest, { flags: 'r+', start: landed }))
            expect(readFileSync(dest).equals(src)).toBe(true)
          } finally {
            if (again !== conn) await again.close()
          }
        },
      )
    }, SLOW)
    it(`an idle session, ${how} killed: the next request fails within 10 s`, async () => {
      const conn = await connect(options())
      try {
        const s = await conn.sftp()
        const pid = await sftpServerPid(conn)
        killer(how)(conn, pid)
        if (how === 'sftp-server') await until(() => !existsSync(`/proc/${pid}`), 5000, 'sftp server gone')
        else await withTimeout(conn.closed, 5000, 'connection closed')
        await deadSessionFails(s)
      } finally {
        await conn.close().catch(() => {})
      }
    })
  }
})

type Listing = Record<string, string>
/** The tree under `root`: dirs, files with their sha256, links with their targets. */
function listing(root: string, rel = ''): Listing {
  const out: Listing = {}
  for (const n of readdirSync(join(root, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n
    const st = lstatSync(join(root, r))
    if (st.isSymbolicLink()) out[r] = `link:${readlinkSync(join(root, r))}`
    else if (st.isDirectory()) {
      out[r] = 'dir'
      Object.assign(out, listing(root, r))
    } else out[r] = `file:${sha256(readFileSync(join(root, r)))}`
  }
  return out
}

describe('directory trees', () => {
  const B = randomBytes(300 * KiB)
  const files: Record<string, Buffer | string> = {
    'a.txt': 'alpha\n',
    empty: '',
    'sub/b.bin': B,
    'sub/deep/c.txt': 'gamma',
    'sub/deep/skip.log': 'log line\n',
  }
  const sizeOfTree = (keys: string[]): number => keys.reduce((a, k) => a + Buffer.byteLength(files[k]), 0)
  /** A tree with nested dirs, an empty dir, files, and links to a file, a dir and nowhere. */
  function makeTree(root: string, owner: Owner | null): void {
    mkdirSync(join(root, 'sub/deep'), { recursive: true })
    mkdirSync(join(root, 'emptydir'))
    for (const [k, v] of Object.entries(files)) writeFileSync(join(root, k), v)
    symlinkSync('a.txt', join(root, 'link-file'))
    symlinkSync('sub', join(root, 'link-dir'))
    symlinkSync('nowhere', join(root, 'dangling'))
    if (owner) for (const k of ['', ...Object.keys(listing(root))]) {
      const p = join(root, k)
      if (lstatSync(p).isSymbolicLink()) continue
      chownSync(p, owner.uid, owner.gid)
    }
  }
  const f = (k: string): string => `file:${sha256(typeof files[k] === 'string' ? Buffer.from(files[k] as string) : files[k] as Buffer)}`
  const SKIP: Listing = {
    'a.txt': f('a.txt'), empty: f('empty'), emptydir: 'dir', sub: 'dir', 'sub/b.bin': f('sub/b.bin'),
    'sub/deep': 'dir', 'sub/deep/c.txt': f('sub/deep/c.txt'), 'sub/deep/skip.log': f('sub/deep/skip.log'),
  }
  const FOLLOW: Listing = {
    ...SKIP, 'link-file': f('a.txt'), 'link-dir': 'dir', 'link-dir/b.bin': f('sub/b.bin'), 'link-dir/deep': 'dir',
    'link-dir/deep/c.txt': f('sub/deep/c.txt'), 'link-dir/deep/skip.log': f('sub/deep/skip.log'),
  }
  const PRESERVE: Listing = { ...SKIP, 'link-file': 'link:a.txt', 'link-dir': 'link:sub', dangling: 'link:nowhere' }
  const FILES = ['a.txt', 'empty', 'sub/b.bin', 'sub/deep/c.txt', 'sub/deep/skip.log']

  let remoteTree: string
  let localTree: string
  beforeAll(() => {
    remoteTree = posix.join(work, 'tree')
    mkdirOwned(remoteTree, user)
    makeTree(remoteTree, user)
    localTree = join(local, 'tree')
    mkdirSync(localTree)
    makeTree(localTree, null)
  })

  for (const [policy, want, count] of [['skip', SKIP, 5], ['follow', FOLLOW, 9], ['preserve', PRESERVE, 5]] as const) {
    it(`downloadDir, symlinks: '${policy}'`, async () => {
      const dest = join(local, name(`dl-${policy}`))
      const n = await sftp.downloadDir(remoteTree, dest, policy === 'skip' ? {} : { symlinks: policy })
      expect(listing(dest)).toEqual(want)
      expect(n).toBe(count)
      expect(readdirSync(dest, { recursive: true }).some((x) => String(x).endsWith('.ferrossh-partial'))).toBe(false)
    })
    it(`uploadDir, symlinks: '${policy}'`, async () => {
      const dest = posix.join(work, name(`ul-${policy}`))
      const n = await sftp.uploadDir(localTree, dest, policy === 'skip' ? {} : { symlinks: policy })
      expect(listing(dest)).toEqual(want)
      expect(n).toBe(count)
    })
  }
  it('tree transfers make directories with the permission bits of the ones copied, as sftp get -r does', async () => {
    const umask = process.umask()
    try {
      process.umask(0o022)
      const r = posix.join(work, name('modes-remote'))
      mkdirOwned(posix.join(r, 'priv'), user)
      chmodSync(posix.join(r, 'priv'), 0o700)
      writeOwned(posix.join(r, 'priv/key'), 'k', user, 0o600)
      writeOwned(posix.join(r, 'run.sh'), '#!/bin/sh\n', user, 0o755)
      const down = join(local, name('modes-down'))
      await sftp.downloadDir(r, down)
      expect(statSync(join(down, 'priv')).mode & 0o777).toBe(0o700)
      expect(statSync(join(down, 'priv/key')).mode & 0o777).toBe(0o600)
      expect(statSync(join(down, 'run.sh')).mode & 0o777).toBe(0o755)
      const up = posix.join(work, name('modes-up'))
      await sftp.uploadDir(down, up)
      expect(statSync(posix.join(up, 'priv')).mode & 0o777).toBe(0o700)
      expect(statSync(posix.join(up, 'priv/key')).mode & 0o777).toBe(0o600)
    } finally {
      process.umask(umask)
    }
  })
  it('tree transfers replace a symlink at a file\'s name instead of writing through it', async () => {
    const outside = join(local, name('outside'))
    writeFileSync(outside, 'untouched')
    const down = join(local, name('tree-links'))
    mkdirSync(down)
    symlinkSync(outside, join(down, 'a.txt'))
    await sftp.downloadDir(remoteTree, down)
    expect(readFileSync(outside, 'utf8')).toBe('untouched')
    expect(lstatSync(join(down, 'a.txt')).isSymbolicLink()).toBe(false)
    expect(readFileSync(join(down, 'a.txt'), 'utf8')).toBe(files['a.txt'])
    // nor is what such a link names looked at: a directory is no reason to fail, a device is
    // not written into, a private file's mode not taken
    const down2 = join(local, name('tree-links-2'))
    mkdirSync(down2)
    const dir = join(local, name('outside-dir'))
    mkdirSync(dir)
    symlinkSync(dir, join(down2, 'a.txt'))
    const priv = join(local, name('outside-private'))
    writeFileSync(priv, 'untouched', { mode: 0o600 })
    symlinkSync(priv, join(down2, 'empty'))
    if (process.getuid?.() === 0) {
      const dev = join(local, name('outside-null'))
      execFileSync('mknod', [dev, 'c', '1', '3'])
      mkdirSync(join(down2, 'sub'))
      symlinkSync(dev, join(down2, 'sub', 'b.bin'))
    }
    await sftp.downloadDir(remoteTree, down2)
    for (const f of ['a.txt', 'empty', ...(process.getuid?.() === 0 ? ['sub/b.bin'] : [])]) {
      expect(lstatSync(join(down2, f)).isFile()).toBe(true)
      const want = files[f]
      expect(readFileSync(join(down2, f)).equals(typeof want === 'string' ? Buffer.from(want) : want)).toBe(true)
    }
    expect(statSync(join(down2, 'empty')).mode & 0o777).not.toBe(0o600)
    expect(readFileSync(priv, 'utf8')).toBe('untouched')
    const up = posix.join(work, name('tree-links-up'))
    mkdirOwned(up, user)
    const remoteOutside = posix.join(work, name('remote-outside'))
    writeOwned(remoteOutside, 'untouched', user)
    symlinkSync(remoteOutside, posix.join(up, 'a.txt'))
    await sftp.uploadDir(localTree, up)
    expect(readFileSync(remoteOutside, 'utf8')).toBe('untouched')
    expect(lstatSync(posix.join(up, 'a.txt')).isSymbolicLink()).toBe(false)
  })
  it("symlinks: 'preserve' replaces a link left by an earlier copy, and a link that cannot be made fails the transfer", async () => {
    const r = posix.join(work, name('preserve-remote'))
    mkdirOwned(r, user)
    writeOwned(posix.join(r, 'f'), 'x', user)
    symlinkSync('f', posix.join(r, 'link'))
    const down = join(local, name('preserve-down'))
    mkdirSync(down)
    symlinkSync('stale', join(down, 'link'))
    await sftp.downloadDir(r, down, { symlinks: 'preserve' })
    expect(readlinkSync(join(down, 'link'))).toBe('f')
    const up = posix.join(work, name('preserve-up'))
    mkdirOwned(up, user)
    symlinkSync('stale', posix.join(up, 'link'))
    await sftp.uploadDir(down, up, { symlinks: 'preserve' })
    expect(readlinkSync(posix.join(up, 'link'))).toBe('f')
    // a directory where the link should go: not a link to replace, so the transfer fails
    const blocked = join(local, name('preserve-blocked'))
    mkdirSync(join(blocked, 'link'), { recursive: true })
    await expect(sftp.downloadDir(r, blocked, { symlinks: 'preserve' })).rejects.toMatchObject({ code: 'EEXIST' })
  })
  it("symlinks: 'follow' refuses a link back into its own tree with ELOOP, both ways", async () => {
    const r = posix.join(work, name('loop-remote'))
    mkdirOwned(posix.join(r, 'sub'), user)
    writeOwned(posix.join(r, 'sub', 'f'), 'x', user)
    symlinkSync('..', posix.join(r, 'sub', 'up'))
    symlinkSync('.', posix.join(r, 'self'))
    const e1 = await withTimeout(sftp.downloadDir(r, join(local, name('loop-dl')), { symlinks: 'follow' }).catch((x: unknown) => x), 10_000)
    expect(e1).toBeInstanceOf(SftpError)
    expect((e1 as SftpError).code).toBe('ELOOP')
    const l = join(local, name('loop-local'))
    mkdirSync(join(l, 'sub'), { recursive: true })
    writeFileSync(join(l, 'sub', 'f'), 'x')
    symlinkSync('..', join(l, 'sub', 'up'))
    const e2 = await withTimeout(sftp.uploadDir(l, posix.join(work, name('loop-ul')), { symlinks: 'follow' }).catch((x: unknown) => x), 10_000)
    expect(e2).toBeInstanceOf(SftpError)
    expect((e2 as SftpError).code).toBe('ELOOP')
    // a link to a directory elsewhere in the tree is no cycle: it is copied
    const ok = posix.join(work, name('no-loop'))
    mkdirOwned(posix.join(ok, 'a'), user)
    writeOwned(posix.join(ok, 'a', 'f'), 'y', user)
    symlinkSync('a', posix.join(ok, 'b'))
    expect(await sftp.downloadDir(ok, join(local, name('no-loop-dl')), { symlinks: 'follow' })).toBe(2)
  })
  it('the first failure ends the whole tree transfer: nothing more is copied after it rejects', async () => {
    const r = posix.join(work, name('one-bad'))
    mkdirOwned(r, user)
    for (let i = 0; i < 12; i++) writeOwned(posix.join(r, `f${String(i).padStart(2, '0')}`), randomBytes(512 * KiB), user)
    writeOwned(posix.join(r, 'f03-unreadable'), 'secret', user, 0o000)
    const dest = join(local, name('one-bad-dl'))
    const e = await sftp.downloadDir(r, dest, { fileConcurrency: 2 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(SftpError)
    expect((e as SftpError).code).toBe('EACCES')
    const after = readdirSync(dest).sort()
    await sleep(1500)
    expect(readdirSync(dest).sort()).toEqual(after)
    expect(after.length).toBeLessThan(12)
    expect(after.some((x) => x.endsWith('.ferrossh-partial'))).toBe(false)
  })
  it('a filter skips files and prunes directories (paths relative, /-separated)', async () => {
    const seen: [string, boolean][] = []
    const filter = (p: string, isDir: boolean): boolean => { seen.push([p, isDir]); return !p.endsWith('.log') && p !== 'emptydir' }
    const want = { ...SKIP }
    delete want['sub/deep/skip.log']
    delete want.emptydir
    const d1 = join(local, name('dl-filter'))
    expect(await sftp.downloadDir(remoteTree, d1, { filter })).toBe(4)
    expect(listing(d1)).toEqual(want)
    expect(seen).toContainEqual(['sub/deep/c.txt', false])
    expect(seen).toContainEqual(['sub/deep', true])
    const u1 = posix.join(work, name('ul-filter'))
    expect(await sftp.uploadDir(localTree, u1, { filter })).toBe(4)
    expect(listing(u1)).toEqual(want)
    const noSub = (p: string): boolean => p !== 'sub'
    const d2 = join(local, name('dl-prune'))
    await sftp.downloadDir(remoteTree, d2, { filter: noSub })
    expect(Object.keys(listing(d2)).filter((k) => k.startsWith('sub'))).toEqual([])
    const u2 = posix.join(work, name('ul-prune'))
    await sftp.uploadDir(localTree, u2, { filter: noSub })
    expect(Object.keys(listing(u2)).filter((k) => k.startsWith('sub'))).toEqual([])
  })
  it('progress across the tree: total bytes and files, increasing, ending complete', async () => {
    const total = sizeOfTree(FILES)
    for (const dir of ['down', 'up'] as const) {
      const calls: (TransferProgress & { files: number; filesTotal: number })[] = []
      const onProgress = (x: TransferProgress & { files: number; filesTotal: number }): void => { calls.push({ ...x }) }
      if (dir === 'down') await sftp.downloadDir(remoteTree, join(local, name('dl-prog')), { onProgress, fileConcurrency: 2 })
      else await sftp.uploadDir(localTree, posix.join(work, name('ul-prog')), { onProgress, fileConcurrency: 2 })
      expect(calls.length).toBeGreaterThanOrEqual(FILES.length)
      for (const c of calls) {
        expect(typeof c.transferred).toBe('number')
        expect(c.total).toBe(total)
        expect(c.filesTotal).toBe(FILES.length)
        expect(c.transferred).toBeLessThanOrEqual(total)
      }
      for (let i = 1; i < calls.length; i++) {
        expect(calls[i].transferred).toBeGreaterThanOrEqual(calls[i - 1].transferred)
        expect(calls[i].files).toBeGreaterThanOrEqual(calls[i - 1].files)
      }
      expect(calls.at(-1)).toEqual({ transferred: total, total, files: FILES.length, filesTotal: FILES.length })
    }
  })
  it('a larger tree with several files at once stays intact', async () => {
    const src = join(local, name('many'))
    for (let d = 0; d < 5; d++) {
      mkdirSync(join(src, `d${d}`, 'inner'), { recursive: true })
      for (let i = 0; i < 8; i++) writeFileSync(join(src, `d${d}`, i % 2 ? 'inner' : '', `f${i}`), randomBytes((d * 8 + i) * 7919))
    }
    const up = posix.join(work, name('many'))
    expect(await sftp.uploadDir(src, up, { fileConcurrency: 8 })).toBe(40)
    const back = join(local, name('many-back'))
    expect(await sftp.downloadDir(up, back, { fileConcurrency: 8 })).toBe(40)
    expect(listing(up)).toEqual(listing(src))
    expect(listing(back)).toEqual(listing(src))
  })
  it('a tree holding files named like partial files, and names too long for the suffix, copies intact both ways', async () => {
    const src = join(local, name('partial-names'))
    mkdirSync(src)
    const long = `${'L'.repeat(249)}.bin` // 253 bytes: with '.ferrossh-partial' beyond 255
    const names = ['x', 'x.ferrossh-partial', 'x.ferrossh-partial.ferrossh-partial', 'y.ferrossh-partial', long, `${'L'.repeat(249)}.bim`]
    // big enough that the transfers overlap when they run at once
    for (const [i, n] of names.entries()) writeFileSync(join(src, n), randomBytes(3 * MiB + i * 4099))
    for (let round = 0; round < 3; round++) {
      const up = posix.join(work, name('partial-names'))
      expect(await sftp.uploadDir(src, up, { fileConcurrency: 8 })).toBe(names.length)
      const back = join(local, name('partial-names-back'))
      expect(await sftp.downloadDir(up, back, { fileConcurrency: 8 })).toBe(names.length)
      expect(listing(up)).toEqual(listing(src))
      expect(listing(back)).toEqual(listing(src))
    }
    // one file at a time, too, with the long name
    const one = join(local, name('long-one'))
    mkdirSync(one)
    const remoteLong = posix.join(work, 'M'.repeat(250))
    await sftp.upload(join(src, long), remoteLong)
    expect(await sha256File(remoteLong)).toBe(await sha256File(join(src, long)))
    await sftp.download(remoteLong, join(one, 'M'.repeat(250)))
    expect(await sha256File(join(one, 'M'.repeat(250)))).toBe(await sha256File(join(src, long)))
    expect(readdirSync(one).filter((n) => n.includes('ferrossh'))).toEqual([])
  }, SLOW)
})

describe('concurrency', () => {
  it('4 downloads and 4 uploads at once on one session are all intact', async () => {
    const sources = Array.from({ length: 8 }, (_, i) => {
      const l = join(local, name('conc-src'))
      const sha = randomFile(l, 12 * MiB + i * 4099)
      const r = posix.join(work, name('conc-src'))
      copyFileSync(l, r)
      chownSync(r, user.uid, user.gid)
      return { l, r, sha }
    })
    const jobs = sources.map((s, i) => {
      if (i < 4) {
        const dest = join(local, name('conc-down'))
        return sftp.download(s.r, dest).then(async () => ({ sha: await sha256File(dest), want: s.sha }))
      }
      const dest = posix.join(work, name('conc-up'))
      return sftp.upload(s.l, dest).then(async () => ({ sha: await sha256File(dest), want: s.sha }))
    })
    // small requests interleaved with the bulk traffic
    const stats = Array.from({ length: 20 }, () => sftp.stat(sources[0].r).then((st) => st.size))
    const results = await Promise.all(jobs)
    for (const r of results) expect(r.sha).toBe(r.want)
    expect(await Promise.all(stats)).toEqual(Array(20).fill(12 * MiB))
  }, SLOW)
  it('streams and transfers mixed on one session', async () => {
    const p = pair(BIG)
    const [a, b, c] = await Promise.all([
      sha256Stream(sftp.createReadStream(p.remote)),
      sftp.download(p.remote, join(local, name('mix'))).then(() => 'ok'),
      pipeline(createLocalReadStream(p.local), sftp.createWriteStream(posix.join(work, 'mix-ws'))).then(() => sha256File(posix.join(work, 'mix-ws'))),
    ])
    expect(a.hash).toBe(p.sha)
    expect(b).toBe('ok')
    expect(c).toBe(p.sha)
  }, SLOW)
})

describe('hostile and limited servers', () => {
  // OpenSSH's sshd runs a hostile SFTP server (fixtures/hostile-sftp-server.py) whose every
  // directory holds the names given to it: a name from the server must never place a file
  // outside the directory downloadDir writes to
  const script = fileURLToPath(new URL('./fixtures/hostile-sftp-server.py', import.meta.url))
  const hostileListing = async (names: string[], check: (s: SftpClient, dest: string) => Promise<void>): Promise<void> => {
    const quoted = names.map((n) => `'${n}'`).join(' ')
    const hostile = await startSshd({ replace: { Subsystem: `sftp /usr/bin/python3 ${script} list ${quoted}` } })
    const c = await connect({ host: hostile.host, port: hostile.port, username: hostile.user, privateKeyPath: hostile.userKey.path, hostKey: { knownHosts: hostile.knownHostsFile } })
    const base = mkdtempSync(join(tmpdir(), 'ferrossh-hostile-'))
    try {
      await check(await c.sftp(), join(base, 'a', 'b', 'c', 'dest'))
      // nothing but the destination itself, and nothing where the names point
      expect(readdirSync(join(base, 'a', 'b', 'c'))).toEqual(['dest'])
      expect(readdirSync(join(base, 'a', 'b', 'c', 'dest'))).toEqual([])
      expect(readdirSync(join(base, 'a', 'b'))).toEqual(['c'])
      expect(existsSync('/tmp/ferrossh-escape')).toBe(false)
    } finally {
      await c.close()
      await hostile.stop()
      rmSync(base, { recursive: true, force: true })
    }
  }
  it('downloadDir refuses a listing that names one entry twice (a link, then a file through it)', async () => {
    await hostileListing(['x', 'x'], async (s, dest) => {
      const e = await s.downloadDir('/anywhere', dest).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(SftpError)
      expect((e as SftpError).code).toBe('EBADMSG')
      expect((e as SftpError).message).toMatch(/"x" .* twice/)
    })
  })
  for (const bad of ['../escape', '../../../../../../../../tmp/ferrossh-escape', 'a/b', 'sub/../../escape']) {
    it(`downloadDir refuses ${JSON.stringify(bad)} with an SftpError before it writes anything`, async () => {
      await hostileListing([bad], async (s, dest) => {
        const e = await s.downloadDir('/anywhere', dest).catch((x: unknown) => x)
        expect(e).toBeInstanceOf(SftpError)
        expect((e as SftpError).code).toBe('EBADMSG')
        expect((e as SftpError).message).toContain(JSON.stringify(bad))
      })
    })
  }
  const memoryServer = async (renames: 'refuse' | 'plain', check: (s: SftpClient) => Promise<void>): Promise<void> => {
    const hostile = await startSshd({ replace: { Subsystem: `sftp /usr/bin/python3 ${script} memory ${renames}` } })
    const c = await connect({ host: hostile.host, port: hostile.port, username: hostile.user, privateKeyPath: hostile.userKey.path, hostKey: { knownHosts: hostile.knownHostsFile } })
    try {
      await check(await c.sftp())
    } finally {
      await c.close()
      await hostile.stop()
    }
  }
  it('upload to a server without posix-rename whose rename fails keeps the file that was there', async () => {
    const src = join(local, name('norename-src'))
    writeFileSync(src, 'the new content')
    await memoryServer('refuse', async (s) => {
      const e = await s.upload(src, '/target').catch((x: unknown) => x)
      expect(e).toBeInstanceOf(SftpError)
      expect((e as SftpError).code).toBe('EACCES')
      expect((await s.readFile('/target')).toString()).toBe('original data')
      expect((await s.readdir('/')).sort()).toEqual(['target'])
    })
  })
  it('upload to a server without posix-rename replaces an existing file, leaving nothing beside it', async () => {
    const src = join(local, name('plainrename-src'))
    writeFileSync(src, 'the new content')
    await memoryServer('plain', async (s) => {
      expect(await s.upload(src, '/target')).toBe(15)
      expect((await s.readFile('/target')).toString()).toBe('the new content')
      expect(await s.upload(src, '/fresh')).toBe(15)
      expect((await s.readdir('/')).sort()).toEqual(['fresh', 'target'])
    })
  })
  it("readdir leaves out '.', '..' and empty names, so downloadDir copies nothing", async () => {
    await hostileListing(['.', '..', ''], async (s, dest) => {
      expect(await s.readdir('/anywhere')).toEqual([])
      expect(await s.downloadDir('/anywhere', dest)).toBe(0)
    })
  })
})

describe('destinations that are no plain file, and failures that say what and where', () => {
  /** A 1 MiB file system everyone may write to (a full disk on both ends: the same machine). */
  let tiny: string | undefined
  beforeAll(() => {
    if (process.getuid?.() !== 0) return
    const dir = posix.join(work, 'tiny')
    mkdirOwned(dir, user)
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=777', 'tmpfs', dir], { stdio: 'ignore' })
      tiny = dir
    } catch { /* no mount here: the tests needing a full disk are skipped */ }
  })
  afterAll(() => {
    if (tiny) execFileSync('umount', [tiny])
  })

  it('download into a local device and upload into a remote one write into it; the device stays', async () => {
    if (process.getuid?.() !== 0) return
    const p = pair(100 * KiB)
    // a private copy of /dev/null on both ends
    const dev = join(local, name('null'))
    execFileSync('mknod', [dev, 'c', '1', '3'])
    expect(await sftp.download(p.remote, dev)).toBe(p.size)
    expect(lstatSync(dev).isCharacterDevice()).toBe(true)
    expect(existsSync(partialOf(dev))).toBe(false)
    const rdev = posix.join(work, name('rnull'))
    execFileSync('mknod', ['-m', '666', rdev, 'c', '1', '3'])
    expect(await sftp.upload(p.local, rdev)).toBe(p.size)
    expect(lstatSync(rdev).isCharacterDevice()).toBe(true)
    expect(existsSync(partialOf(rdev))).toBe(false)
  })
  it('a FIFO as the destination is written into, as fs.writeFile does', async () => {
    const p = pair(255 * KiB)
    const fifo = join(local, name('fifo'))
    execFileSync('mkfifo', [fifo])
    const read = sha256File(fifo)
    expect(await sftp.download(p.remote, fifo)).toBe(p.size)
    expect(await read).toBe(p.sha)
    expect(lstatSync(fifo).isFIFO()).toBe(true)
  })
  it('a directory as the destination fails at once with EISDIR, before any byte is copied, both ways', async () => {
    const p = pair(BIG)
    const dir = join(local, name('a-dir'))
    mkdirSync(dir)
    const calls: number[] = []
    let e = await rejection(sftp.download(p.remote, dir, { onProgress: (x) => { calls.push(x.transferred) } }))
    expect([e.constructor, e.code, e.path]).toEqual([SftpError, 'EISDIR', dir])
    expect(calls.filter((n) => n > 0)).toEqual([])
    expect(existsSync(partialOf(dir))).toBe(false)
    const rdir = posix.join(work, name('r-dir'))
    mkdirOwned(rdir, user)
    e = await rejection(sftp.upload(p.local, rdir, { onProgress: (x) => { calls.push(x.transferred) } }))
    expect([e.constructor, e.code, e.path]).toEqual([SftpError, 'EISDIR', rdir])
    expect(calls.filter((n) => n > 0)).toEqual([])
    expect(existsSync(partialOf(rdir))).toBe(false)
  })
  it('local failures carry the errno the OS gave: ENOTDIR for a file in the path, ENOSPC for a full disk', async () => {
    const p = pair(32 * KiB)
    const file = join(local, name('plain'))
    writeFileSync(file, 'x')
    const e = await rejection(sftp.download(p.remote, join(file, 'below')))
    expect([e.constructor, e.code]).toEqual([SftpError, 'ENOTDIR'])
    if (!tiny) return
    const big = pair(3 * MiB)
    const dest = join(tiny, name('full'))
    const f = await rejection(sftp.download(big.remote, dest))
    expect([f.constructor, f.code]).toEqual([SftpError, 'ENOSPC'])
    expect(f.message).toContain('ENOSPC')
    expect(existsSync(partialOf(dest))).toBe(false)
  })
  it('a download of a remote directory is EISDIR naming it', async () => {
    const rdir = posix.join(work, name('r-src-dir'))
    mkdirOwned(rdir, user)
    const e = await rejection(sftp.download(rdir, join(local, name('never'))))
    expect([e.constructor, e.code, e.path]).toEqual([SftpError, 'EISDIR', rdir])
    expect(e.message).toContain(rdir)
  })
  it('writes the server refuses (a full disk) name the file: upload, uploadDir, writeFile, FileHandle.write', async () => {
    if (!tiny) return
    const big = pair(3 * MiB)
    const up = posix.join(tiny, name('up'))
    let e = await rejection(sftp.upload(big.local, up))
    expect([e.constructor, e.path]).toEqual([SftpError, up])
    expect(e.message).toContain(up)
    const tree = join(local, name('big-tree'))
    mkdirSync(tree)
    copyFileSync(big.local, join(tree, 'big'))
    const treeDest = posix.join(tiny, name('tree'))
    e = await rejection(sftp.uploadDir(tree, treeDest))
    expect([e.constructor, e.path]).toEqual([SftpError, posix.join(treeDest, 'big')])
    const wf = posix.join(tiny, name('wf'))
    e = await rejection(sftp.writeFile(wf, readFileSync(big.local)))
    expect([e.constructor, e.path]).toEqual([SftpError, wf])
    expect(e.message).toContain(wf)
    const fhPath = posix.join(tiny, name('fh'))
    const fh = await sftp.open(fhPath, 'w')
    try {
      e = await rejection(fh.write(readFileSync(big.local)))
      expect([e.constructor, e.path]).toEqual([SftpError, fhPath])
    } finally {
      await fh.close()
    }
    for (const n of readdirSync(tiny)) rmSync(join(tiny, n), { recursive: true, force: true })
  })
  it('uploadDir of a local file is ENOTDIR and makes nothing on the server', async () => {
    const p = pair(1)
    const dest = posix.join(work, name('never-dir'))
    const e = await rejection(sftp.uploadDir(p.local, dest))
    expect([e.constructor, e.code, e.path]).toEqual([SftpError, 'ENOTDIR', p.local])
    expect(existsSync(dest)).toBe(false)
  })
  it('tree progress counts what is copied: a file that grew after the listing raises the total, never passes it', async () => {
    const src = posix.join(work, name('growing'))
    mkdirOwned(src, user)
    for (const n of ['a', 'b', 'c']) writeOwned(posix.join(src, n), randomBytes(64 * KiB), user)
    const calls: TransferProgress[] = []
    // the filter runs as the tree is listed: each file grows once it has been
    const grow = (r: string): boolean => {
      writeFileSync(posix.join(src, r), randomBytes(200 * KiB), { flag: 'a' })
      return true
    }
    const dest = join(local, name('grown'))
    await sftp.downloadDir(src, dest, { filter: grow, fileConcurrency: 1, onProgress: (x) => { calls.push({ ...x }) } })
    const copied = ['a', 'b', 'c'].reduce((n, f) => n + statSync(join(dest, f)).size, 0)
    expect(copied).toBe(3 * 264 * KiB)
    for (let i = 0; i < calls.length; i++) {
      expect(calls[i].transferred).toBeLessThanOrEqual(calls[i].total)
      if (i > 0) expect(calls[i].transferred).toBeGreaterThanOrEqual(calls[i - 1].transferred)
    }
    expect(calls.at(-1)).toMatchObject({ transferred: copied, total: copied })
  })
  it("uploadDir({ symlinks: 'follow' }) counts a followed link as the size of the file it names", async () => {
    const p = pair(255 * KiB)
    const tree = join(local, name('follow-tree'))
    mkdirSync(tree)
    symlinkSync(p.local, join(tree, 'link'))
    const calls: TransferProgress[] = []
    await sftp.uploadDir(tree, posix.join(work, name('follow-up')), { symlinks: 'follow', onProgress: (x) => { calls.push({ ...x }) } })
    for (const c of calls) expect(c.total).toBe(p.size)
    expect(calls.at(-1)).toMatchObject({ transferred: p.size, total: p.size })
  })
  it('many files at once (fileConcurrency past 10) print no MaxListenersExceededWarning', async () => {
    const src = posix.join(work, name('wide'))
    mkdirOwned(src, user)
    for (let i = 0; i < 24; i++) writeOwned(posix.join(src, `f${i}`), randomBytes(40 * KiB), user)
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      const signal = new AbortController().signal
      const down = join(local, name('wide'))
      expect(await sftp.downloadDir(src, down, { fileConcurrency: 20, signal })).toBe(24)
      expect(await sftp.uploadDir(down, posix.join(work, name('wide-up')), { fileConcurrency: 20, signal })).toBe(24)
      await sleep(50) // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String)).toEqual([])
  })
})
