// SftpClient against the real OpenSSH sshd (internal-sftp): every operation with its result
// checked against the file system (the tests run as root on the server's machine), the
// fs-style error codes, and argument checking. Bulk transfers are in sftp-transfer.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statfsSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import * as fsp from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, posix } from 'node:path'

import { ConfigError, connect, Dirent, FileHandle, SftpError, Stats, type ConnectOptions, type SftpClient, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import { rejection, until, withTimeout } from './fixtures/helpers'
import { connectionPid, KiB, MiB, mkdirOwned, openFiles, ownerOf, sftpServerPid, writeOwned, type Owner } from './fixtures/sftp-helpers'

let sshd: Sshd
let ssh: SshClient
let sftp: SftpClient
let user: Owner
/** Absolute remote work directory, owned by the test user; also a local path (same machine). */
let work: string
/** The same directory relative to the login directory. */
let relWork: string

const options = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: sshd.host, port: sshd.port, username: sshd.user,
  privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile }, ...extra,
})

beforeAll(async () => {
  sshd = await startSshd()
  user = ownerOf(sshd.home)
  relWork = `sftp-ops-${process.pid}-${randomBytes(4).toString('hex')}`
  work = posix.join(sshd.home, relWork)
  mkdirOwned(work, user)
  ssh = await connect(options())
  sftp = await ssh.sftp()
})
afterAll(async () => {
  await sftp?.close()
  await ssh?.close()
  await sshd?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

let seq = 0
/** A fresh directory under the work directory, owned by the test user. */
function fresh(name = 'd'): string {
  const d = posix.join(work, `${name}-${++seq}`)
  mkdirOwned(d, user)
  return d
}

async function sftpError(p: Promise<unknown>, code: string, status: number | number[], path?: string): Promise<SftpError> {
  const e = await rejection(p, 20_000)
  expect(e, `${e.name}: ${e.message}`).toBeInstanceOf(SftpError)
  const s = e as unknown as SftpError
  expect({ code: s.code, message: s.message }).toEqual({ code, message: expect.any(String) })
  if (Array.isArray(status)) expect(status).toContain(s.status)
  else expect(s.status).toBe(status)
  if (path !== undefined) expect(s.path).toBe(path)
  return s
}

async function configError(p: Promise<unknown> | (() => unknown), option?: string): Promise<void> {
  let e: unknown
  if (typeof p === 'function') {
    try { await p() } catch (x) { e = x }
  } else {
    e = await p.then(() => undefined, (x: unknown) => x)
  }
  expect(e, 'expected a ConfigError').toBeInstanceOf(ConfigError)
  if (option) expect((e as ConfigError).option).toBe(option)
}

describe('session', () => {
  it('reports the OpenSSH extensions and limits', () => {
    expect(sftp.info.extensions).toEqual(expect.arrayContaining(['posix-rename@openssh.com', 'statvfs@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com', 'limits@openssh.com', 'expand-path@openssh.com', 'copy-data']))
    expect(sftp.info.maxRead).toBeGreaterThan(0)
    expect(sftp.info.maxRead).toBeLessThanOrEqual(255 * KiB)
    expect(sftp.info.maxWrite).toBeGreaterThan(0)
    expect(sftp.info.maxWrite).toBeLessThanOrEqual(255 * KiB)
  })
  it('close() ends the session: later requests fail promptly with an SftpError, the connection lives on', async () => {
    const s = await ssh.sftp()
    expect((await s.stat(work)).isDirectory()).toBe(true)
    await s.close()
    const t0 = Date.now()
    const e = await rejection(withTimeout(s.stat(work), 10_000, 'stat after close'))
    expect(e).toBeInstanceOf(SftpError)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
    expect((await sftp.stat(work)).isDirectory()).toBe(true)
    // the SFTP session alone ended: no connection reason
    expect(e.reason).toBeUndefined()
  })
  it("calls cut short by the connection's end say whose end it was: reason 'closed' after close(), 'connection-lost' otherwise", async () => {
    const mine = await connect(options())
    const s = await mine.sftp()
    const pending = s.readFile(join(work, 'never-there-' + randomBytes(4).toString('hex'))).catch((x) => x)
    await mine.close()
    const after = await rejection(s.stat(work))
    expect(after).toMatchObject({ code: 'ECONNRESET', reason: 'closed' })
    const cut = await pending
    expect(cut).toBeInstanceOf(SftpError)
    if (cut.code === 'ECONNRESET') expect(cut.reason).toBe('closed')
    const lost = await connect(options())
    lost.on('error', () => {})
    const s2 = await lost.sftp()
    process.kill(await connectionPid(lost), 'SIGKILL')
    await lost.closed
    const e = await rejection(s2.stat(work))
    expect(e).toMatchObject({ code: 'ECONNRESET', reason: 'connection-lost' })
  })
})

describe('attributes', () => {
  it('stat matches the real file: size, mode, uid, gid, atime, mtime', async () => {
    const d = fresh()
    const f = posix.join(d, 'file')
    writeOwned(f, 'x'.repeat(12345), user, 0o640)
    utimesSync(f, 1_000_000_000, 1_100_000_007)
    const real = statSync(f)
    const s = await sftp.stat(f)
    expect(s).toBeInstanceOf(Stats)
    expect(s.size).toBe(12345)
    expect(s.mode).toBe(real.mode)
    expect(s.mode & 0o7777).toBe(0o640)
    expect(s.uid).toBe(real.uid)
    expect(s.gid).toBe(real.gid)
    expect(s.atimeMs).toBe(1_000_000_000_000)
    expect(s.mtimeMs).toBe(1_100_000_007_000)
    expect(s.mtime).toEqual(new Date(1_100_000_007_000))
    expect(s.atime).toEqual(new Date(1_000_000_000_000))
    expect(s.isFile()).toBe(true)
    expect(s.isDirectory()).toBe(false)
    expect(s.isSymbolicLink()).toBe(false)
    const big = await sftp.stat(f, { bigint: true })
    expect(big.size).toBe(12345n)
    const dir = await sftp.stat(d)
    expect(dir.isDirectory()).toBe(true)
    expect(dir.isFile()).toBe(false)
    expect(dir.mode).toBe(statSync(d).mode)
  })
  it('lstat sees the link, stat follows it', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'target'), 'twelve bytes', user)
    symlinkSync('target', posix.join(d, 'link'))
    const l = await sftp.lstat(posix.join(d, 'link'))
    expect(l.isSymbolicLink()).toBe(true)
    expect(l.isFile()).toBe(false)
    expect(l.size).toBe('target'.length)
    const s = await sftp.stat(posix.join(d, 'link'))
    expect(s.isFile()).toBe(true)
    expect(s.isSymbolicLink()).toBe(false)
    expect(s.size).toBe(12)
    expect((await sftp.lstat(posix.join(d, 'target'))).isFile()).toBe(true)
  })
  it('exists: true for files, directories and good links; false for missing paths and dangling links', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'f'), 'x', user)
    symlinkSync('f', posix.join(d, 'good'))
    symlinkSync('nowhere', posix.join(d, 'dangling'))
    expect(await sftp.exists(posix.join(d, 'f'))).toBe(true)
    expect(await sftp.exists(d)).toBe(true)
    expect(await sftp.exists(posix.join(d, 'good'))).toBe(true)
    expect(await sftp.exists(posix.join(d, 'missing'))).toBe(false)
    expect(await sftp.exists(posix.join(d, 'dangling'))).toBe(false)
  })
  it('exists rethrows errors other than ENOENT (EACCES)', async () => {
    const d = fresh()
    const priv = posix.join(d, 'private')
    mkdirSync(priv, { mode: 0o700 })
    writeOwned(posix.join(priv, 'inside'), 'x', null)
    await sftpError(sftp.exists(posix.join(priv, 'inside')), 'EACCES', 3, posix.join(priv, 'inside'))
  })
  it('chmod with a number and an octal string, visible via stat and on disk', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'x', user, 0o644)
    await sftp.chmod(f, 0o600)
    expect(statSync(f).mode & 0o7777).toBe(0o600)
    expect((await sftp.stat(f)).mode & 0o7777).toBe(0o600)
    await sftp.chmod(f, '751')
    expect(statSync(f).mode & 0o7777).toBe(0o751)
    await sftp.chmod(d, 0o711)
    expect(statSync(d).mode & 0o7777).toBe(0o711)
  })
  it('chown changes the group (owner keeps the file), visible via stat; chown to root is EACCES', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'x', { uid: user.uid, gid: 0 })
    expect((await sftp.stat(f)).gid).toBe(0)
    await sftp.chown(f, user.uid, user.gid)
    expect(statSync(f).gid).toBe(user.gid)
    const s = await sftp.stat(f)
    expect(s.uid).toBe(user.uid)
    expect(s.gid).toBe(user.gid)
    await sftpError(sftp.chown(f, 0, 0), 'EACCES', 3, f)
    expect(statSync(f).uid).toBe(user.uid)
  })
  it('utimes with Dates, seconds and date strings, visible via stat and on disk', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'x', user)
    await sftp.utimes(f, new Date('2001-02-03T04:05:06Z'), 1234567890)
    let s = await sftp.stat(f)
    expect(s.atimeMs).toBe(Date.parse('2001-02-03T04:05:06Z'))
    expect(s.mtimeMs).toBe(1234567890_000)
    expect(statSync(f).mtimeMs).toBe(1234567890_000)
    expect(statSync(f).atimeMs).toBe(Date.parse('2001-02-03T04:05:06Z'))
    await sftp.utimes(f, '2010-01-01T00:00:00Z', '2020-06-30T12:00:00Z')
    s = await sftp.stat(f)
    expect(s.atime.toISOString()).toBe('2010-01-01T00:00:00.000Z')
    expect(s.mtime.toISOString()).toBe('2020-06-30T12:00:00.000Z')
    // SFTP v3 times and ids are 32 bits: what does not fit is refused, not wrapped
    await expect(sftp.utimes(f, -100, 0)).rejects.toBeInstanceOf(ConfigError)
    await expect(sftp.utimes(f, 0, 4_400_000_000)).rejects.toBeInstanceOf(ConfigError)
    await expect(sftp.chown(f, 2 ** 32 + 1234, 0)).rejects.toBeInstanceOf(ConfigError)
    expect(statSync(f).mtime.toISOString()).toBe('2020-06-30T12:00:00.000Z')
  })
  it('truncate shrinks (keeping the prefix), extends with zeros, and defaults to 0', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    const data = randomBytes(300 * KiB)
    writeOwned(f, data, user)
    await sftp.truncate(f, 1000)
    expect(readFileSync(f)).toEqual(data.subarray(0, 1000))
    expect((await sftp.stat(f)).size).toBe(1000)
    await sftp.truncate(f, 5000)
    expect(readFileSync(f)).toEqual(Buffer.concat([data.subarray(0, 1000), Buffer.alloc(4000)]))
    await sftp.truncate(f)
    expect(statSync(f).size).toBe(0)
  })
})

describe('paths and links', () => {
  it('realpath resolves ., .. and symlinks to the canonical absolute path', async () => {
    expect(await sftp.realpath('.')).toBe(sshd.home)
    const d = fresh()
    mkdirOwned(posix.join(d, 'a'), user)
    mkdirOwned(posix.join(d, 'b'), user)
    expect(await sftp.realpath(`${d}/a/../b`)).toBe(posix.join(d, 'b'))
    expect(await sftp.realpath(`${relWork}/${posix.basename(d)}/./a`)).toBe(posix.join(d, 'a'))
    symlinkSync('b', posix.join(d, 'to-b'))
    expect(await sftp.realpath(posix.join(d, 'to-b'))).toBe(posix.join(d, 'b'))
  })
  it('symlink(target, path) in fs order; readlink gives the target back', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'target'), 'content', user)
    await sftp.symlink('target', posix.join(d, 'rel-link'))
    expect(lstatSync(posix.join(d, 'rel-link')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(posix.join(d, 'rel-link'))).toBe('target')
    expect(await sftp.readlink(posix.join(d, 'rel-link'))).toBe('target')
    expect(readFileSync(posix.join(d, 'rel-link'), 'utf8')).toBe('content')
    await sftp.symlink(posix.join(d, 'target'), posix.join(d, 'abs-link'))
    expect(readlinkSync(posix.join(d, 'abs-link'))).toBe(posix.join(d, 'target'))
    expect(await sftp.readFile(posix.join(d, 'abs-link'), 'utf8')).toBe('content')
    // a link to nothing is allowed, as with ln -s
    await sftp.symlink('does-not-exist', posix.join(d, 'dangling'))
    expect(readlinkSync(posix.join(d, 'dangling'))).toBe('does-not-exist')
  })
  it('hardlink makes a second name of the same inode', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'a'), 'shared', user)
    await sftp.hardlink(posix.join(d, 'a'), posix.join(d, 'b'))
    const a = statSync(posix.join(d, 'a'))
    const b = statSync(posix.join(d, 'b'))
    expect(b.ino).toBe(a.ino)
    expect(a.nlink).toBe(2)
    expect(readFileSync(posix.join(d, 'b'), 'utf8')).toBe('shared')
    await rejection(sftp.hardlink(posix.join(d, 'a'), posix.join(d, 'b'))).then((e) => expect(e).toBeInstanceOf(SftpError))
  })
  it('expandPath expands ~ and ~/… to the login directory', async () => {
    expect(await sftp.expandPath('~')).toBe(sshd.home)
    expect(await sftp.expandPath(`~/${relWork}`)).toBe(work)
    // OpenSSH canonicalizes the result: only the last component may be missing
    expect(await sftp.expandPath(`~/${relWork}/not-yet`)).toBe(`${work}/not-yet`)
    expect(await sftp.expandPath(`~${sshd.user}`)).toBe(sshd.home)
  })
  it('statvfs numbers agree with statfs of the same file system', async () => {
    const s = await sftp.statvfs(work)
    const real = statfsSync(work)
    expect(s.bsize).toBe(real.bsize)
    expect(s.frsize).toBeGreaterThan(0)
    expect(s.blocks * s.frsize).toBe(real.blocks * real.bsize)
    expect(s.namemax).toBe(255)
    expect(s.bfree).toBeLessThanOrEqual(s.blocks)
    expect(s.bavail).toBeLessThanOrEqual(s.bfree)
    expect(s.bavail).toBeGreaterThan(0)
    // free space moves with the other suites' writes: within 2 GiB
    expect(Math.abs(s.bavail * s.frsize - real.bavail * real.bsize)).toBeLessThan(2 * 1024 * MiB)
    expect(s.files).toBe(real.files)
    expect(s.ffree).toBeLessThanOrEqual(s.files)
    expect(Math.abs(s.ffree - real.ffree)).toBeLessThan(100_000)
  })
})

describe('rename, unlink, copyFile', () => {
  it('rename moves a file', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'from'), 'payload', user)
    await sftp.rename(posix.join(d, 'from'), posix.join(d, 'to'))
    expect(existsSync(posix.join(d, 'from'))).toBe(false)
    expect(readFileSync(posix.join(d, 'to'), 'utf8')).toBe('payload')
  })
  it('rename over an existing file replaces it (like fs.rename)', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'new'), 'the new content', user)
    writeOwned(posix.join(d, 'old'), 'old content that is longer than the new', user)
    const ino = statSync(posix.join(d, 'new')).ino
    await sftp.rename(posix.join(d, 'new'), posix.join(d, 'old'))
    expect(existsSync(posix.join(d, 'new'))).toBe(false)
    expect(readFileSync(posix.join(d, 'old'), 'utf8')).toBe('the new content')
    expect(statSync(posix.join(d, 'old')).ino).toBe(ino)
  })
  it('rename moves a directory with its contents', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'a', 'inner'), user)
    writeOwned(posix.join(d, 'a', 'inner', 'f'), 'deep', user)
    await sftp.rename(posix.join(d, 'a'), posix.join(d, 'b'))
    expect(readFileSync(posix.join(d, 'b', 'inner', 'f'), 'utf8')).toBe('deep')
    expect(existsSync(posix.join(d, 'a'))).toBe(false)
  })
  it('unlink removes a file; on a symlink it removes the link, not the target', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'f'), 'x', user)
    symlinkSync('f', posix.join(d, 'l'))
    await sftp.unlink(posix.join(d, 'l'))
    expect(existsSync(posix.join(d, 'l'))).toBe(false)
    expect(existsSync(posix.join(d, 'f'))).toBe(true)
    await sftp.unlink(posix.join(d, 'f'))
    expect(existsSync(posix.join(d, 'f'))).toBe(false)
  })
  it('copyFile copies on the server, and replaces a longer destination exactly', async () => {
    const d = fresh()
    const data = randomBytes(3 * MiB + 17)
    writeOwned(posix.join(d, 'src'), data, user)
    await sftp.copyFile(posix.join(d, 'src'), posix.join(d, 'copy'))
    expect(readFileSync(posix.join(d, 'copy')).equals(data)).toBe(true)
    writeOwned(posix.join(d, 'longer'), randomBytes(5 * MiB), user)
    await sftp.copyFile(posix.join(d, 'src'), posix.join(d, 'longer'))
    expect(readFileSync(posix.join(d, 'longer')).equals(data)).toBe(true)
    writeOwned(posix.join(d, 'empty'), '', user)
    await sftp.copyFile(posix.join(d, 'empty'), posix.join(d, 'copy'))
    expect(statSync(posix.join(d, 'copy')).size).toBe(0)
  })
  it('copyFile onto the file itself (by any path, a symlink too) leaves it as it was', async () => {
    const d = fresh()
    const data = randomBytes(64 * 1024 + 3)
    writeOwned(posix.join(d, 'same'), data, user)
    symlinkSync('same', posix.join(d, 'link'))
    await sftp.copyFile(posix.join(d, 'same'), posix.join(d, 'same'))
    await sftp.copyFile(posix.join(d, 'same'), posix.join(d, '.', 'same'))
    await sftp.copyFile(posix.join(d, 'link'), posix.join(d, 'same'))
    expect(readFileSync(posix.join(d, 'same')).equals(data)).toBe(true)
    // a missing source still fails, onto itself or not
    await expect(sftp.copyFile(posix.join(d, 'missing'), posix.join(d, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' })
  })
})

describe('directories', () => {
  it('mkdir creates a directory with the mode asked for', async () => {
    const d = fresh()
    await sftp.mkdir(posix.join(d, 'new'), { mode: 0o750 })
    const s = statSync(posix.join(d, 'new'))
    expect(s.isDirectory()).toBe(true)
    expect(s.mode & 0o777).toBe(0o750)
    expect(s.uid).toBe(user.uid)
  })
  it('mkdir of a path relative to the login directory', async () => {
    const d = fresh()
    await sftp.mkdir(`${relWork}/${posix.basename(d)}/relative`)
    expect(statSync(posix.join(d, 'relative')).isDirectory()).toBe(true)
  })
  it('mkdir recursive makes the parents and accepts an existing directory', async () => {
    const d = fresh()
    await sftp.mkdir(posix.join(d, 'a/b/c'), { recursive: true })
    expect(statSync(posix.join(d, 'a/b/c')).isDirectory()).toBe(true)
    await sftp.mkdir(posix.join(d, 'a/b/c'), { recursive: true })
    await sftp.mkdir(posix.join(d, 'a/b/c/d'), { recursive: true })
    expect(statSync(posix.join(d, 'a/b/c/d')).isDirectory()).toBe(true)
    await sftp.mkdir(`${relWork}/${posix.basename(d)}/r1/r2`, { recursive: true })
    expect(statSync(posix.join(d, 'r1/r2')).isDirectory()).toBe(true)
  })
  it('mkdir recursive through a file fails with an SftpError', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'file'), 'x', user)
    const e = await rejection(sftp.mkdir(posix.join(d, 'file/sub'), { recursive: true }))
    expect(e).toBeInstanceOf(SftpError)
    // as fs.mkdir: a file on the way is ENOTDIR
    expect((e as unknown as SftpError).code).toBe('ENOTDIR')
    expect(statSync(posix.join(d, 'file')).isFile()).toBe(true)
  })
  it('rmdir removes an empty directory', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'empty'), user)
    await sftp.rmdir(posix.join(d, 'empty'))
    expect(existsSync(posix.join(d, 'empty'))).toBe(false)
  })
  it('rmdir recursive removes a tree, removing links without following them', async () => {
    const d = fresh()
    const outside = fresh('outside')
    writeOwned(posix.join(outside, 'keep'), 'keep me', user)
    const tree = posix.join(d, 'tree')
    mkdirOwned(posix.join(tree, 'a/b'), user)
    mkdirOwned(posix.join(tree, 'empty'), user)
    writeOwned(posix.join(tree, 'f'), 'x', user)
    writeOwned(posix.join(tree, 'a/g'), 'y', user)
    writeOwned(posix.join(tree, 'a/b/h'), randomBytes(1000), user)
    symlinkSync(outside, posix.join(tree, 'a/link-to-outside'))
    symlinkSync('nowhere', posix.join(tree, 'dangling'))
    await sftp.rmdir(tree, { recursive: true })
    expect(existsSync(tree)).toBe(false)
    expect(readFileSync(posix.join(outside, 'keep'), 'utf8')).toBe('keep me')
  })
  it('rm and rmdir never recurse into a link to a directory (with a trailing slash neither): each outcome as fs.promises gives it', async () => {
    /** A tree with a link to a directory, a link to a file and a dangling link, at `base`. */
    const build = (base: string, own: (p: string) => void): void => {
      mkdirSync(posix.join(base, 'target/sub'), { recursive: true })
      writeFileSync(posix.join(base, 'target/keep'), 'keep me')
      writeFileSync(posix.join(base, 'target/sub/deep'), 'deep')
      writeFileSync(posix.join(base, 'file'), 'f')
      symlinkSync('target', posix.join(base, 'link'))
      symlinkSync('file', posix.join(base, 'flink'))
      symlinkSync('nowhere', posix.join(base, 'dangling'))
      for (const p of ['', 'target', 'target/sub', 'target/keep', 'target/sub/deep', 'file', 'link', 'flink', 'dangling']) own(posix.join(base, p))
    }
    /** Every name under `base`, links not followed. */
    const tree = (base: string, rel = ''): string[] => {
      const out: string[] = []
      for (const n of readdirSync(posix.join(base, rel)).sort()) {
        const r = rel ? `${rel}/${n}` : n
        out.push(r)
        if (lstatSync(posix.join(base, r)).isDirectory()) out.push(...tree(base, r))
      }
      return out
    }
    type Op = (m: Pick<SftpClient, 'rm' | 'rmdir'>, base: string) => Promise<unknown>
    const cases: [string, Op][] = [
      ["rmdir(link, { recursive })", (m, b) => m.rmdir(posix.join(b, 'link'), { recursive: true })],
      ["rmdir('link/', { recursive })", (m, b) => m.rmdir(posix.join(b, 'link/'), { recursive: true })],
      ["rmdir(link)", (m, b) => m.rmdir(posix.join(b, 'link'))],
      ["rm(link, { recursive })", (m, b) => m.rm(posix.join(b, 'link'), { recursive: true })],
      ["rm('link/', { recursive })", (m, b) => m.rm(posix.join(b, 'link/'), { recursive: true })],
      ["rm('link/')", (m, b) => m.rm(posix.join(b, 'link/'))],
      ["rm('link//', { recursive, force })", (m, b) => m.rm(posix.join(b, 'link') + '//', { recursive: true, force: true })],
      ["rm('flink/', { recursive })", (m, b) => m.rm(posix.join(b, 'flink/'), { recursive: true })],
      ["rm('file/', { recursive, force })", (m, b) => m.rm(posix.join(b, 'file/'), { recursive: true, force: true })],
      ["rm('dangling/', { recursive, force })", (m, b) => m.rm(posix.join(b, 'dangling/'), { recursive: true, force: true })],
      ["rm(dangling, { recursive })", (m, b) => m.rm(posix.join(b, 'dangling'), { recursive: true })],
      ["rmdir(flink, { recursive })", (m, b) => m.rmdir(posix.join(b, 'flink'), { recursive: true })],
      ["rmdir(file, { recursive })", (m, b) => m.rmdir(posix.join(b, 'file'), { recursive: true })],
      ["rmdir(dangling, { recursive })", (m, b) => m.rmdir(posix.join(b, 'dangling'), { recursive: true })],
      ["rmdir(target, { recursive })", (m, b) => m.rmdir(posix.join(b, 'target'), { recursive: true })],
    ]
    const localRoot = join(tmpdir(), `ferrossh-rmlink-${process.pid}-${++seq}`)
    const d = fresh()
    try {
      for (const [i, [label, op]] of cases.entries()) {
        const lb = posix.join(localRoot, String(i))
        const rb = posix.join(d, String(i))
        build(lb, () => {})
        build(rb, (p) => lchownSync(p, user.uid, user.gid))
        const outcome = (e: unknown): string => String((e as { code?: string }).code).replace(/^ERR_FS_/, '')
        const want = await op(fsp as unknown as SftpClient, lb).then(() => 'ok', outcome)
        const got = await op(sftp, rb).then(() => 'ok', outcome)
        expect({ label, outcome: got, tree: tree(rb) }).toEqual({ label, outcome: want, tree: tree(lb) })
        if (label.startsWith('rmdir(target')) {
          // the directory itself: its tree goes, the links to it stay
          expect(existsSync(posix.join(rb, 'target')), label).toBe(false)
          expect(lstatSync(posix.join(rb, 'link')).isSymbolicLink(), label).toBe(true)
          continue
        }
        // what the link points to is never emptied
        expect(readFileSync(posix.join(rb, 'target/keep'), 'utf8'), label).toBe('keep me')
        expect(readFileSync(posix.join(rb, 'target/sub/deep'), 'utf8'), label).toBe('deep')
      }
    } finally {
      rmSync(localRoot, { recursive: true, force: true })
    }
  })
  it('readdir lists the names (no . or ..)', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'f1'), '0123456789', user)
    writeOwned(posix.join(d, 'f2'), '', user)
    writeOwned(posix.join(d, 'name with spaces & ünïcödé'), 'u', user)
    mkdirOwned(posix.join(d, 'sub'), user)
    symlinkSync('f1', posix.join(d, 'link'))
    expect((await sftp.readdir(d)).sort()).toEqual(['f1', 'f2', 'link', 'name with spaces & ünïcödé', 'sub'])
    expect(await sftp.readdir(posix.join(d, 'sub'))).toEqual([])
  })
  it('readdir withFileTypes gives Dirents with types, parentPath and stats', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'f1'), '0123456789', user, 0o600)
    mkdirOwned(posix.join(d, 'sub'), user)
    symlinkSync('f1', posix.join(d, 'link'))
    const entries = await sftp.readdir(d, { withFileTypes: true })
    const by = new Map(entries.map((e) => [e.name, e]))
    expect([...by.keys()].sort()).toEqual(['f1', 'link', 'sub'])
    for (const e of entries) {
      expect(e).toBeInstanceOf(Dirent)
      expect(e.parentPath).toBe(d)
      expect(e.longname).toContain(e.name)
    }
    const f1 = by.get('f1')!
    expect([f1.isFile(), f1.isDirectory(), f1.isSymbolicLink()]).toEqual([true, false, false])
    expect(f1.stats.size).toBe(10)
    expect(f1.stats.mode).toBe(statSync(posix.join(d, 'f1')).mode)
    const sub = by.get('sub')!
    expect([sub.isFile(), sub.isDirectory(), sub.isSymbolicLink()]).toEqual([false, true, false])
    const link = by.get('link')!
    expect([link.isFile(), link.isDirectory(), link.isSymbolicLink()]).toEqual([false, false, true])
  })
  it('readdir recursive lists the whole tree as fs does: relative names, or Dirents with their parentPath; links not followed', async () => {
    const build = (base: string, own: (p: string) => void): void => {
      mkdirSync(posix.join(base, 'a/b/c'), { recursive: true })
      mkdirSync(posix.join(base, 'empty'))
      writeFileSync(posix.join(base, 'top'), '1')
      writeFileSync(posix.join(base, 'a/f'), '2')
      writeFileSync(posix.join(base, 'a/b/c/deep'), '3')
      symlinkSync('a', posix.join(base, 'link-to-a'))
      symlinkSync('../top', posix.join(base, 'a/link-to-top'))
      for (const p of ['', 'a', 'a/b', 'a/b/c', 'empty', 'top', 'a/f', 'a/b/c/deep', 'link-to-a', 'a/link-to-top']) own(posix.join(base, p))
    }
    const lb = join(tmpdir(), `ferrossh-readdir-${process.pid}-${++seq}`)
    const rb = posix.join(fresh(), 'tree')
    build(lb, () => {})
    build(rb, (p) => lchownSync(p, user.uid, user.gid))
    try {
      type D = { name: string; parentPath: string; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }
      const shape = (base: string, ds: D[]): string[] => ds.map((e) => `${posix.relative(base, e.parentPath) || '.'}|${e.name}|${e.isDirectory()}|${e.isFile()}|${e.isSymbolicLink()}`).sort()
      const local = (await fsp.readdir(lb, { recursive: true, withFileTypes: true })) as unknown as D[]
      const remote = await sftp.readdir(rb, { recursive: true, withFileTypes: true })
      expect(remote.every((e) => e instanceof Dirent)).toBe(true)
      expect(shape(rb, remote)).toEqual(shape(lb, local))
      // the names are the paths relative to the directory read (a link's target is not entered)
      const want = local.map((e) => posix.join(posix.relative(lb, e.parentPath), e.name)).sort()
      expect((await sftp.readdir(rb, { recursive: true })).sort()).toEqual(want)
      expect(want).toContain('a/b/c/deep')
      expect(want).not.toContain('link-to-a/f')
      // false is the flat listing; a trailing slash or a relative path works as well
      expect((await sftp.readdir(rb, { recursive: false })).sort()).toEqual(['a', 'empty', 'link-to-a', 'top'])
      expect((await sftp.readdir(rb + '/', { recursive: true })).sort()).toEqual(want)
      await configError(sftp.readdir(rb, { recursive: 'yes' as never }), 'recursive')
    } finally {
      rmSync(lb, { recursive: true, force: true })
    }
  })
  it('opendir over a directory of 5000 entries yields every one, once', async () => {
    const d = fresh('big')
    const want = new Set<string>()
    for (let i = 0; i < 5000; i++) {
      const name = `entry-${String(i).padStart(5, '0')}-${'x'.repeat(i % 40)}`
      writeFileSync(posix.join(d, name), '')
      want.add(name)
    }
    const seen: string[] = []
    for await (const e of sftp.opendir(d)) {
      expect(e).toBeInstanceOf(Dirent)
      expect(e.parentPath).toBe(d)
      expect(e.isFile()).toBe(true)
      seen.push(e.name)
    }
    expect(seen.length).toBe(5000)
    expect(new Set(seen)).toEqual(want)
    expect((await sftp.readdir(d)).length).toBe(5000)
  }, 60_000)
  it('opendir: leaving the loop early closes the directory handle on the server', async () => {
    const d = fresh('early')
    for (let i = 0; i < 3000; i++) writeFileSync(posix.join(d, `e${i}`), '')
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      let n = 0
      for await (const e of s.opendir(d)) {
        expect(e.name).toMatch(/^e\d+$/)
        if (n === 0) expect(openFiles(pid)).toContain(d) // the handle is open while iterating
        if (++n === 10) break
      }
      await until(() => !openFiles(pid).includes(d), 5000, 'directory handle closed on the server', () => openFiles(pid))
      expect((await s.stat(d)).isDirectory()).toBe(true)
    } finally {
      await conn.close()
    }
  })
})

describe('FileHandle', () => {
  it('write and read at offsets; position null follows the file position', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    const h = await sftp.open(f, 'w+', 0o640)
    expect(h).toBeInstanceOf(FileHandle)
    expect(await h.write('hello')).toEqual({ bytesWritten: 5 })
    expect(await h.write(Buffer.from('world'), 10)).toEqual({ bytesWritten: 5 })
    await h.write('!!') // at the file position (5), not after the positioned write
    const buf = Buffer.alloc(20, 0xee)
    const r = await h.read(buf, 0, 20, 0)
    expect(r.bytesRead).toBe(15)
    expect(r.buffer).toBe(buf)
    expect(buf.subarray(0, 15)).toEqual(Buffer.from('hello!!\0\0\0world'))
    expect(buf[15]).toBe(0xee)
    // into the middle of a buffer
    const mid = Buffer.alloc(8, 0x2e)
    expect((await h.read(mid, 2, 3, 10)).bytesRead).toBe(3)
    expect(mid.toString('latin1')).toBe('..wor...')
    // past the end
    expect((await h.read(Buffer.alloc(4), 0, 4, 100)).bytesRead).toBe(0)
    const st = await h.stat()
    expect(st.size).toBe(15)
    expect(st.isFile()).toBe(true)
    expect((await h.stat({ bigint: true })).size).toBe(15n)
    await h.close()
    expect(readFileSync(f)).toEqual(Buffer.from('hello!!\0\0\0world'))
    expect(statSync(f).mode & 0o777).toBe(0o640)
    // sequential reads from a fresh handle advance the position
    const r2 = await sftp.open(f)
    const a = Buffer.alloc(4)
    expect((await r2.read(a)).bytesRead).toBe(4)
    expect(a.toString()).toBe('hell')
    expect((await r2.read(a)).bytesRead).toBe(4)
    expect(a.toString('latin1')).toBe('o!!\0')
    await r2.close()
  })
  it("write takes fs.promises.FileHandle.write's argument forms: (buffer, offset, length, position), (buffer, { … }), (string, position, encoding)", async () => {
    const f = posix.join(fresh(), 'f')
    writeOwned(f, '0123456789', user)
    const h = await sftp.open(f, 'r+')
    expect(await h.write(Buffer.from('abcdef'), 1, 2, 5)).toEqual({ bytesWritten: 2 })
    expect(readFileSync(f, 'latin1')).toBe('01234bc789')
    expect(await h.write(Buffer.from('WXYZ'), { offset: 2, length: 2, position: 0 })).toEqual({ bytesWritten: 2 })
    expect(readFileSync(f, 'latin1')).toBe('YZ234bc789')
    expect(await h.write('5859', 3, 'hex')).toEqual({ bytesWritten: 2 })
    expect(readFileSync(f, 'latin1')).toBe('YZ2XYbc789')
    await expect(h.write(Buffer.from('ab'), 1, 5, 0)).rejects.toBeInstanceOf(ConfigError)
    await h.close()
  })
  it('writes and reads issued together at the current position go one after the other, as on a local file', async () => {
    const f = posix.join(fresh(), 'f')
    const h = await sftp.open(f, 'w+')
    await Promise.all([h.write('aaa'), h.write('bbb'), h.write('ccc')])
    await h.close()
    expect(readFileSync(f, 'latin1')).toBe('aaabbbccc')
    const r = await sftp.open(f)
    const bufs = [Buffer.alloc(3), Buffer.alloc(3), Buffer.alloc(3)]
    const got = await Promise.all(bufs.map((b) => r.read(b, 0, 3)))
    expect(got.map((x) => x.bytesRead)).toEqual([3, 3, 3])
    expect(bufs.map((b) => b.toString())).toEqual(['aaa', 'bbb', 'ccc'])
    expect((await r.read(Buffer.alloc(3))).bytesRead).toBe(0)
    await r.close()
    // a read, then a write, issued together: the write goes where the read ended
    writeOwned(f, 'abcdef', user)
    const rw = await sftp.open(f, 'r+')
    const [first] = await Promise.all([rw.read(Buffer.alloc(3)), rw.write('XYZ')])
    expect(first.buffer.toString()).toBe('abc')
    await rw.close()
    expect(readFileSync(f, 'latin1')).toBe('abcXYZ')
    // fs's nulls mean the defaults
    const n = await sftp.open(f)
    expect((await n.read(Buffer.alloc(2), null, null, 1)).buffer.toString()).toBe('bc')
    await n.close()
  })
  it('reads and writes larger than one SFTP request, at odd offsets', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    const data = randomBytes(2 * MiB + 333)
    await using h = await sftp.open(f, 'w+')
    await h.write(data, 12345)
    const back = Buffer.alloc(data.length)
    expect((await h.read(back, 0, data.length, 12345)).bytesRead).toBe(data.length)
    expect(back.equals(data)).toBe(true)
    const onDisk = readFileSync(f)
    expect(onDisk.length).toBe(12345 + data.length)
    expect(onDisk.subarray(0, 12345).equals(Buffer.alloc(12345))).toBe(true)
    expect(onDisk.subarray(12345).equals(data)).toBe(true)
  })
  it('truncate, chmod and sync on the open file', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, '0123456789', user, 0o644)
    const h = await sftp.open(f, 'r+')
    await h.truncate(4)
    expect(readFileSync(f, 'utf8')).toBe('0123')
    await h.truncate(6)
    expect(readFileSync(f)).toEqual(Buffer.from('0123\0\0'))
    await h.chmod(0o600)
    expect(statSync(f).mode & 0o777).toBe(0o600)
    await h.chmod('640')
    expect(statSync(f).mode & 0o777).toBe(0o640)
    await h.write('AB', 1)
    await h.sync()
    expect(readFileSync(f)).toEqual(Buffer.from('0AB3\0\0'))
    await h.truncate()
    expect(statSync(f).size).toBe(0)
    await h.close()
  })
  it("flags: 'a+' reads from the start and appends its writes, as fs does", async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'hello', user)
    const h = await sftp.open(f, 'a+')
    const first = await h.read(Buffer.alloc(16))
    expect(first.buffer.subarray(0, first.bytesRead).toString()).toBe('hello')
    await h.write('XY')
    await h.write('Z')
    // after an append the position is the end: nothing more to read there
    expect((await h.read(Buffer.alloc(16))).bytesRead).toBe(0)
    const again = await h.read(Buffer.alloc(16), 0, 16, 0)
    expect(again.buffer.subarray(0, again.bytesRead).toString()).toBe('helloXYZ')
    await h.close()
    expect(readFileSync(f, 'utf8')).toBe('helloXYZ')
  })
  it("writes issued together on an 'a' or 'a+' handle land whole, in the order issued (positioned writes elsewhere stay concurrent)", async () => {
    const d = fresh()
    // several MiB each: every write is many requests, in flight together
    const parts = [randomBytes(5 * MiB + 3), randomBytes(5 * MiB + 7), randomBytes(1 * MiB + 1)]
    for (const flags of ['a', 'a+', 'as']) {
      const f = posix.join(d, `f-${flags}`)
      writeOwned(f, 'head', user)
      const h = await sftp.open(f, flags)
      const written = await withTimeout(Promise.all(parts.map((p) => h.write(p))), 60_000, 'appends')
      expect(written.map((g) => g.bytesWritten)).toEqual(parts.map((p) => p.length))
      await h.close()
      // each write whole, in the order they were issued
      const got = readFileSync(f)
      expect(got.length, `flags ${flags}`).toBe(4 + parts.reduce((a, p) => a + p.length, 0))
      expect(got.equals(Buffer.concat([Buffer.from('head'), ...parts])), `flags ${flags}`).toBe(true)
    }
    // a 'w' handle's positioned writes go out together and each lands at its place
    const f = posix.join(d, 'positioned')
    const h = await sftp.open(f, 'w')
    const [a, b] = [randomBytes(3 * MiB), randomBytes(3 * MiB)]
    await withTimeout(Promise.all([h.write(b, 3 * MiB), h.write(a, 0)]), 60_000, 'positioned writes')
    await h.close()
    expect(readFileSync(f).equals(Buffer.concat([a, b]))).toBe(true)
  })
  it("flags: 'r+' keeps the content, 'a' appends, 'w' truncates, 'wx' creates only", async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'abcdef', user)
    let h = await sftp.open(f, 'r+')
    await h.write('XY', 2)
    await h.close()
    expect(readFileSync(f, 'utf8')).toBe('abXYef')
    h = await sftp.open(f, 'a')
    await h.write('++')
    await h.write('--')
    await h.close()
    expect(readFileSync(f, 'utf8')).toBe('abXYef++--')
    h = await sftp.open(f, 'w')
    await h.write('new')
    await h.close()
    expect(readFileSync(f, 'utf8')).toBe('new')
    h = await sftp.open(posix.join(d, 'x'), 'wx', 0o600)
    await h.write('excl')
    await h.close()
    expect(readFileSync(posix.join(d, 'x'), 'utf8')).toBe('excl')
    expect(statSync(posix.join(d, 'x')).mode & 0o777).toBe(0o600)
  })
  it('a closed handle refuses reads and writes with EBADF; closing twice is harmless', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'f'), 'x', user)
    const h = await sftp.open(posix.join(d, 'f'))
    await h.close()
    await h.close()
    for (const p of [h.read(Buffer.alloc(1)), h.write('y'), h.stat(), h.truncate(0), h.sync()]) {
      const e = await rejection(p)
      expect(e).toBeInstanceOf(SftpError)
      expect(e.code).toBe('EBADF')
    }
  })
  it('closing handles releases them on the server', async () => {
    const d = fresh()
    const f = posix.join(d, 'held-open')
    writeOwned(f, 'x', user)
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const handles = await Promise.all(Array.from({ length: 20 }, () => s.open(f)))
      expect(openFiles(pid).filter((p) => p === f).length).toBe(20)
      await Promise.all(handles.map((h) => h.close()))
      expect(openFiles(pid).filter((p) => p === f).length).toBe(0)
    } finally {
      await conn.close()
    }
  })
})

describe('many handles, open modes and argument forms', () => {
  it('300 handles open at once all work (OpenSSH handle 128 on holds a byte that is not UTF-8)', async () => {
    const d = fresh()
    const files = Array.from({ length: 300 }, (_, i) => posix.join(d, `f${i}`))
    files.forEach((f, i) => writeOwned(f, `file ${i}`, user))
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      const handles: FileHandle[] = []
      for (const f of files) handles.push(await s.open(f, 'r+'))
      expect(openFiles(pid).filter((p) => p.startsWith(d)).length).toBe(300)
      for (const [i, h] of handles.entries()) {
        expect((await h.read(Buffer.alloc(64), 0, 64, 0)).buffer.toString('utf8', 0, `file ${i}`.length)).toBe(`file ${i}`)
        expect((await h.stat()).size).toBe(`file ${i}`.length)
        await h.write('!', Buffer.byteLength(`file ${i}`))
      }
      // streams, whole-file reads and transfers open more handles while these are held
      expect(await s.readFile(files[299], 'utf8')).toBe('file 299!')
      let streamed = ''
      for await (const c of s.createReadStream(files[200], 'utf8')) streamed += c
      expect(streamed).toBe('file 200!')
      const local = join(tmpdir(), `ferrossh-handles-${process.pid}-${seq}`)
      try {
        await s.download(files[150], local)
        expect(readFileSync(local, 'utf8')).toBe('file 150!')
      } finally {
        rmSync(local, { force: true })
      }
      await Promise.all(handles.map((h) => h.close()))
      expect(openFiles(pid).filter((p) => p.startsWith(d)).length).toBe(0)
      expect(readFileSync(files[255], 'utf8')).toBe('file 255!')
    } finally {
      await conn.close()
    }
  })
  it('a handle refuses what its open mode does not allow, as a local descriptor does', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'keep', user)
    const r = await sftp.open(f, 'r')
    await sftpError(r.write('x'), 'EBADF', 0)
    await sftpError(r.truncate(1), 'EINVAL', 0)
    expect((await r.read()).bytesRead).toBe(4)
    await r.close()
    const a = await sftp.open(f, 'a')
    await sftpError(a.read(), 'EBADF', 0)
    await a.write('!')
    await a.close()
    const w = await sftp.open(posix.join(d, 'g'), 'wx')
    await sftpError(w.read(), 'EBADF', 0)
    await w.close()
    const rw = await sftp.open(f, 'a+')
    expect((await rw.read()).bytesRead).toBe(5)
    await rw.close()
    await sftpError(sftp.writeFile(f, 'x', { flag: 'r' }), 'EBADF', 0, f)
    expect(() => sftp.createWriteStream(f, { flags: 'r' })).toThrow(SftpError)
    expect(readFileSync(f, 'utf8')).toBe('keep!')
  })
  it('copyFile takes COPYFILE_EXCL and refuses a clone it cannot make', async () => {
    const d = fresh()
    const [src, dst] = [posix.join(d, 'src'), posix.join(d, 'dst')]
    writeOwned(src, 'NEW', user)
    writeOwned(dst, 'PRECIOUS', user)
    const { COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE } = fsConstants
    await sftpError(sftp.copyFile(src, dst, COPYFILE_EXCL), 'EEXIST', [4, 11])
    expect(readFileSync(dst, 'utf8')).toBe('PRECIOUS')
    await sftpError(sftp.copyFile(src, src, COPYFILE_EXCL), 'EEXIST', [4, 11])
    await sftpError(sftp.copyFile(src, posix.join(d, 'c'), COPYFILE_FICLONE_FORCE), 'ENOTSUP', 0)
    await configError(sftp.copyFile(src, dst, 1 << 8), 'mode')
    await sftp.copyFile(src, posix.join(d, 'fresh'), COPYFILE_EXCL)
    expect(readFileSync(posix.join(d, 'fresh'), 'utf8')).toBe('NEW')
    await sftp.copyFile(src, dst, COPYFILE_FICLONE)
    expect(readFileSync(dst, 'utf8')).toBe('NEW')
  })
  it('refuses what fs refuses: no mode for chmod, null or true as a time, -Infinity as a length, offsets past 2^53', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, 'abc', user)
    utimesSync(f, 1_000_000, 1_000_000)
    await configError(sftp.chmod(f, undefined as never), 'mode')
    await configError(sftp.utimes(f, null as never, null as never), 'atime')
    await configError(sftp.utimes(f, 5, true as never), 'mtime')
    await configError(sftp.truncate(f, -Infinity), 'size')
    await configError(sftp.truncate(f, -1.5), 'size')
    const h = await sftp.open(f, 'r+')
    await configError(h.chmod(undefined as never), 'mode')
    await configError(h.utimes(null as never, 1), 'atime')
    await h.close()
    expect(statSync(f).mtimeMs).toBe(1_000_000_000)
    expect(statSync(f).size).toBe(3)
    expect(() => sftp.createReadStream(f, { start: 1e300 })).toThrow(ConfigError)
    expect(() => sftp.createReadStream(f, { start: 0, end: 2 ** 60 })).toThrow(ConfigError)
  })
  it('a chunkSize past 2^32 is the largest chunk, not a wrapped one', async () => {
    const d = fresh()
    const f = posix.join(d, 'big')
    const data = randomBytes(4 * MiB)
    writeOwned(f, data, user)
    const local = join(tmpdir(), `ferrossh-chunk-${process.pid}-${seq}`)
    try {
      await withTimeout(sftp.download(f, local, { chunkSize: 2 ** 32 + 1 }), 20_000, 'download with a huge chunkSize')
      expect(readFileSync(local).equals(data)).toBe(true)
      await withTimeout(sftp.download(f, local, { chunkSize: 2 ** 32 }), 20_000, 'download with chunkSize 2^32')
      expect(readFileSync(local).equals(data)).toBe(true)
    } finally {
      rmSync(local, { force: true })
    }
  })
  it('readFile and writeFile take a signal; the handle is closed after an abort', async () => {
    const d = fresh()
    const f = posix.join(d, 'big')
    writeOwned(f, randomBytes(64 * MiB), user)
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      expect(await rejection(s.readFile(f, { signal: AbortSignal.abort() }))).toMatchObject({ name: 'AbortError' })
      const ac = new AbortController()
      const reading = s.readFile(f, { signal: ac.signal })
      setTimeout(() => ac.abort(), 20)
      expect(await rejection(reading)).toMatchObject({ name: 'AbortError' })
      const g = posix.join(d, 'out')
      expect(await rejection(s.writeFile(g, 'x', { signal: AbortSignal.abort() }))).toMatchObject({ name: 'AbortError' })
      expect(existsSync(g)).toBe(false)
      const ac2 = new AbortController()
      const writing = s.writeFile(g, randomBytes(64 * MiB), { signal: ac2.signal })
      setTimeout(() => ac2.abort(), 20)
      expect(await rejection(writing)).toMatchObject({ name: 'AbortError' })
      await until(() => !openFiles(pid).some((p) => p.startsWith(d)), 5000, 'handles closed after the aborts', () => openFiles(pid))
      expect(await s.readFile(f, { signal: new AbortController().signal })).toHaveLength(64 * MiB)
    } finally {
      await conn.close()
    }
  })
  it("fs's shorthand forms: mkdir(path, mode), a string as stream or readdir options, any ArrayBufferView", async () => {
    const d = fresh()
    await sftp.mkdir(posix.join(d, 'm'), 0o700)
    expect(statSync(posix.join(d, 'm')).mode & 0o777).toBe(0o700)
    await sftp.mkdir(posix.join(d, 'n'), '750')
    expect(statSync(posix.join(d, 'n')).mode & 0o777).toBe(0o750)
    const f = posix.join(d, 'f')
    await sftp.writeFile(f, new Uint16Array([0x6968, 0x2121]))
    expect(readFileSync(f, 'latin1')).toBe('hi!!')
    const bytes = Buffer.from('xxABCDxx')
    await sftp.writeFile(f, new DataView(bytes.buffer, bytes.byteOffset + 2, 4))
    expect(readFileSync(f, 'utf8')).toBe('ABCD')
    let text = ''
    for await (const c of sftp.createReadStream(f, 'hex')) text += c
    expect(text).toBe('41424344')
    const w = sftp.createWriteStream(posix.join(d, 'h'), 'hex')
    await new Promise<void>((res, rej) => { w.once('finish', () => res()); w.once('error', rej); w.end('6869') })
    expect(readFileSync(posix.join(d, 'h'), 'utf8')).toBe('hi')
    expect((await sftp.readdir(d, 'utf8')).sort()).toEqual(['f', 'h', 'm', 'n'])
    await configError(sftp.readdir(d, { encoding: 'buffer' as never }), 'encoding')
  })
})

describe("fs.promises' other forms", () => {
  it('numeric and synchronous open flags, read() without a buffer or with options, handle utimes, negative truncate', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    const { O_WRONLY, O_CREAT, O_TRUNC } = fsConstants
    const w = await sftp.open(f, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    await w.write('hello')
    await w.utimes(1_500_000_000, '1600000000')
    await w.close()
    expect(statSync(f).mtimeMs).toBe(1_600_000_000_000)
    expect(statSync(f).atimeMs).toBe(1_500_000_000_000)
    const a = await sftp.open(f, 'as')
    await a.write('!')
    await a.close()
    expect(readFileSync(f, 'utf8')).toBe('hello!')
    await expect(sftp.open(f, 0o777777)).rejects.toBeInstanceOf(ConfigError)
    const r = await sftp.open(f)
    const whole = await r.read()
    expect(whole.bytesRead).toBe(6)
    expect(whole.buffer.length).toBe(16384)
    expect((await r.read({ buffer: Buffer.alloc(3), position: 1 })).buffer.toString()).toBe('ell')
    const b = Buffer.alloc(4)
    expect((await r.read(b, { offset: 1, length: 2, position: 4 })).bytesRead).toBe(2)
    expect(b.subarray(1, 3).toString()).toBe('o!')
    await r.close()
    await sftp.truncate(f, -1)
    expect(statSync(f).size).toBe(0)
  })
  it('writeFile and appendFile take an encoding string; mkdir -p tells the first directory it made; rm as fs.promises.rm', async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    await sftp.writeFile(f, '6869', 'hex')
    await sftp.appendFile(f, '21', 'hex')
    expect(readFileSync(f, 'utf8')).toBe('hi!')
    expect(await sftp.mkdir(posix.join(d, 'a/b/c'), { recursive: true })).toBe(posix.join(d, 'a'))
    expect(await sftp.mkdir(posix.join(d, 'a/b'), { recursive: true })).toBeUndefined()
    await sftp.rm(f)
    expect(existsSync(f)).toBe(false)
    expect((await rejection(sftp.rm(posix.join(d, 'a')))).code).toBe('EISDIR')
    await sftp.rm(posix.join(d, 'a'), { recursive: true })
    expect(existsSync(posix.join(d, 'a'))).toBe(false)
    expect((await rejection(sftp.rm(posix.join(d, 'missing')))).code).toBe('ENOENT')
    await sftp.rm(posix.join(d, 'missing'), { force: true })
  })
  it("streams: 'open' and 'ready', an encoding, end: Infinity, bytesWritten", async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    const w = sftp.createWriteStream(f)
    const opened = new Promise<void>((res) => w.once('ready', () => res()))
    w.write('héllo ')
    w.end('wörld')
    await new Promise<void>((res, rej) => { w.once('finish', () => res()); w.once('error', rej) })
    await opened
    expect(w.bytesWritten).toBe(Buffer.byteLength('héllo wörld'))
    const rs = sftp.createReadStream(f, { encoding: 'utf8', start: 1, end: Infinity })
    let sawOpen = false
    rs.once('open', () => { sawOpen = true })
    let text = ''
    for await (const c of rs) {
      expect(typeof c).toBe('string')
      text += c
    }
    expect(sawOpen).toBe(true)
    expect(text).toBe(Buffer.from('héllo wörld').subarray(1).toString('utf8'))
  })
})

describe('whole files', () => {
  it('writeFile/readFile round trip of binary data', async () => {
    const d = fresh()
    const f = posix.join(d, 'bin')
    const data = randomBytes(MiB + 1)
    await sftp.writeFile(f, data)
    expect(readFileSync(f).equals(data)).toBe(true)
    const back = await sftp.readFile(f)
    expect(Buffer.isBuffer(back)).toBe(true)
    expect(back.equals(data)).toBe(true)
  })
  it('strings and encodings; a shorter writeFile replaces the content', async () => {
    const d = fresh()
    const f = posix.join(d, 'text')
    await sftp.writeFile(f, 'héllo wörld, a long first version')
    await sftp.writeFile(f, 'héllo')
    expect(readFileSync(f, 'utf8')).toBe('héllo')
    expect(await sftp.readFile(f, 'utf8')).toBe('héllo')
    expect(await sftp.readFile(f, { encoding: 'utf8' })).toBe('héllo')
    await sftp.writeFile(f, '68656c6c6f', { encoding: 'hex' })
    expect(await sftp.readFile(f, 'latin1')).toBe('hello')
    expect(await sftp.readFile(f, 'base64')).toBe(Buffer.from('hello').toString('base64'))
  })
  it('writeFile of a Uint8Array view writes only the view', async () => {
    const d = fresh()
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    await sftp.writeFile(posix.join(d, 'view'), backing.subarray(3, 7))
    expect([...readFileSync(posix.join(d, 'view'))]).toEqual([3, 4, 5, 6])
  })
  it('writeFile mode on creation, and flag wx', async () => {
    const d = fresh()
    await sftp.writeFile(posix.join(d, 'm'), 'x', { mode: 0o600 })
    expect(statSync(posix.join(d, 'm')).mode & 0o777).toBe(0o600)
    await sftp.writeFile(posix.join(d, 'once'), 'first', { flag: 'wx' })
    await sftpError(sftp.writeFile(posix.join(d, 'once'), 'second', { flag: 'wx' }), 'EEXIST', 4, posix.join(d, 'once'))
    expect(readFileSync(posix.join(d, 'once'), 'utf8')).toBe('first')
  })
  it('readFile of an empty file, and maxSize', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'empty'), '', user)
    expect((await sftp.readFile(posix.join(d, 'empty'))).length).toBe(0)
    writeOwned(posix.join(d, 'k'), randomBytes(1000), user)
    expect((await sftp.readFile(posix.join(d, 'k'), { maxSize: 1000 })).length).toBe(1000)
    await sftpError(sftp.readFile(posix.join(d, 'k'), { maxSize: 999 }), 'EFBIG', 0, posix.join(d, 'k'))
  })
  it('appendFile creates, then appends (also past one SFTP request)', async () => {
    const d = fresh()
    const f = posix.join(d, 'log')
    await sftp.appendFile(f, 'one\n')
    await sftp.appendFile(f, Buffer.from('two\n'))
    expect(readFileSync(f, 'utf8')).toBe('one\ntwo\n')
    const big = randomBytes(600 * KiB)
    await sftp.appendFile(f, big)
    await sftp.appendFile(f, 'end')
    expect(readFileSync(f).equals(Buffer.concat([Buffer.from('one\ntwo\n'), big, Buffer.from('end')]))).toBe(true)
    await sftp.appendFile(posix.join(d, 'new'), 'x', { mode: 0o600 })
    expect(statSync(posix.join(d, 'new')).mode & 0o777).toBe(0o600)
  })
})

describe('errors', () => {
  it('a trailing slash asks for a directory (ENOTDIR on a file, EISDIR to create), and an over-long name is ENAMETOOLONG', async () => {
    const d = fresh()
    const f = posix.join(d, 'file')
    writeOwned(f, 'x', user)
    await sftpError(sftp.readFile(`${f}/`), 'ENOTDIR', 2, `${f}/`)
    await sftpError(sftp.open(`${f}/`), 'ENOTDIR', 2, `${f}/`)
    await sftpError(sftp.writeFile(posix.join(d, 'newdir/'), 'x'), 'EISDIR', 4)
    expect(existsSync(posix.join(d, 'newdir'))).toBe(false)
    const long = posix.join(d, 'n'.repeat(300))
    await sftpError(sftp.writeFile(long, 'x'), 'ENAMETOOLONG', [2, 4, 5])
    await sftpError(sftp.open(long), 'ENAMETOOLONG', [2, 4, 5])
    expect(readFileSync(f, 'utf8')).toBe('x')
  })
  it('ENOENT for a missing path: stat, lstat, open, unlink, readFile, readdir, rmdir, rename, readlink', async () => {
    const d = fresh()
    const m = posix.join(d, 'missing')
    await sftpError(sftp.stat(m), 'ENOENT', 2, m)
    await sftpError(sftp.lstat(m), 'ENOENT', 2, m)
    await sftpError(sftp.open(m), 'ENOENT', 2, m)
    await sftpError(sftp.open(m, 'r+'), 'ENOENT', 2, m)
    await sftpError(sftp.unlink(m), 'ENOENT', 2, m)
    await sftpError(sftp.readFile(m), 'ENOENT', 2, m)
    await sftpError(sftp.readdir(m), 'ENOENT', 2, m)
    await sftpError(sftp.rmdir(m), 'ENOENT', 2, m)
    await sftpError(sftp.rename(m, posix.join(d, 'x')), 'ENOENT', 2, m)
    await sftpError(sftp.readlink(m), 'ENOENT', 2, m)
    await sftpError(sftp.chmod(m, 0o600), 'ENOENT', 2, m)
    await sftpError(sftp.copyFile(m, posix.join(d, 'x')), 'ENOENT', 2, m)
    await sftpError(sftp.writeFile(posix.join(m, 'child'), 'x'), 'ENOENT', 2, posix.join(m, 'child'))
    const e = await sftpError(sftp.stat(m), 'ENOENT', 2)
    expect(e.message).toContain(m)
    expect(e.name).toBe('SftpError')
  })
  it('EACCES for a root-owned 0600 file and a root-owned 0700 directory', async () => {
    const d = fresh()
    const secret = posix.join(d, 'secret')
    writeOwned(secret, 'top secret', null, 0o600)
    const priv = posix.join(d, 'private')
    mkdirSync(priv, { mode: 0o700 })
    writeOwned(posix.join(priv, 'inside'), 'x', null)
    await sftpError(sftp.readFile(secret), 'EACCES', 3, secret)
    await sftpError(sftp.open(secret, 'r'), 'EACCES', 3, secret)
    await sftpError(sftp.open(secret, 'r+'), 'EACCES', 3, secret)
    await sftpError(sftp.writeFile(secret, 'overwrite'), 'EACCES', 3, secret)
    await sftpError(sftp.chmod(secret, 0o666), 'EACCES', 3, secret)
    await sftpError(sftp.readdir(priv), 'EACCES', 3, priv)
    await sftpError(sftp.stat(posix.join(priv, 'inside')), 'EACCES', 3, posix.join(priv, 'inside'))
    await sftpError(sftp.writeFile(posix.join(priv, 'new'), 'x'), 'EACCES', 3, posix.join(priv, 'new'))
    await sftpError(sftp.mkdir(posix.join(priv, 'sub')), 'EACCES', 3, posix.join(priv, 'sub'))
    expect(readFileSync(secret, 'utf8')).toBe('top secret')
  })
  it('EEXIST: mkdir of an existing directory or file, open wx of an existing file', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'dir'), user)
    writeOwned(posix.join(d, 'file'), 'x', user)
    await sftpError(sftp.mkdir(posix.join(d, 'dir')), 'EEXIST', 4, posix.join(d, 'dir'))
    await sftpError(sftp.mkdir(posix.join(d, 'file')), 'EEXIST', 4, posix.join(d, 'file'))
    await sftpError(sftp.open(posix.join(d, 'file'), 'wx'), 'EEXIST', 4, posix.join(d, 'file'))
    await sftpError(sftp.open(posix.join(d, 'file'), 'ax'), 'EEXIST', 4, posix.join(d, 'file'))
    expect(readFileSync(posix.join(d, 'file'), 'utf8')).toBe('x')
  })
  it('EISDIR for writes to a link that leads to a directory, and for copyFile of a directory, as fs.promises gives them (EEXIST only for x)', async () => {
    const build = (base: string, own: (p: string) => void): void => {
      mkdirSync(posix.join(base, 'releases/v2'), { recursive: true })
      writeFileSync(posix.join(base, 'releases/v2/keep'), 'keep')
      symlinkSync('releases/v2', posix.join(base, 'current'))
      symlinkSync('nowhere', posix.join(base, 'dangling'))
      writeFileSync(posix.join(base, 'file'), 'x')
      for (const p of ['', 'releases', 'releases/v2', 'releases/v2/keep', 'current', 'dangling', 'file']) own(posix.join(base, p))
    }
    type Op = (m: SftpClient, base: string) => Promise<unknown>
    const at = (b: string, p: string): string => posix.join(b, p)
    const cases: [string, Op][] = [
      ["writeFile(current)", (m, b) => m.writeFile(at(b, 'current'), 'x')],
      ["appendFile(current)", (m, b) => m.appendFile(at(b, 'current'), 'x')],
      ["open(current, 'w')", (m, b) => m.open(at(b, 'current'), 'w').then((h) => h.close())],
      ["open(current, 'r+')", (m, b) => m.open(at(b, 'current'), 'r+').then((h) => h.close())],
      ["open(current, 'a')", (m, b) => m.open(at(b, 'current'), 'a').then((h) => h.close())],
      ["open(current, 'wx')", (m, b) => m.open(at(b, 'current'), 'wx').then((h) => h.close())],
      ["open(dangling, 'wx')", (m, b) => m.open(at(b, 'dangling'), 'wx').then((h) => h.close())],
      ["open(file, 'ax')", (m, b) => m.open(at(b, 'file'), 'ax').then((h) => h.close())],
      ["writeFile(releases/v2)", (m, b) => m.writeFile(at(b, 'releases/v2'), 'x')],
      ["copyFile(file, current)", (m, b) => m.copyFile(at(b, 'file'), at(b, 'current'))],
      ["truncate(current)", (m, b) => m.truncate(at(b, 'current'))],
      ["copyFile(current, y)", (m, b) => m.copyFile(at(b, 'current'), at(b, 'y'))],
      ["copyFile(releases, y)", (m, b) => m.copyFile(at(b, 'releases'), at(b, 'y'))],
    ]
    const localRoot = join(tmpdir(), `ferrossh-dirlink-${process.pid}-${++seq}`)
    const d = fresh()
    try {
      for (const [i, [label, op]] of cases.entries()) {
        const lb = posix.join(localRoot, String(i))
        const rb = posix.join(d, String(i))
        build(lb, () => {})
        build(rb, (p) => lchownSync(p, user.uid, user.gid))
        const outcome = (e: unknown): string => String((e as { code?: string }).code)
        const want = await op(fsp as unknown as SftpClient, lb).then(() => 'ok', outcome)
        const got = await op(sftp, rb).then(() => 'ok', outcome)
        // nothing created beside (copyFile of a directory makes no 'y'), nothing written into
        expect({ label, outcome: got, names: readdirSync(rb).sort() }).toEqual({ label, outcome: want, names: readdirSync(lb).sort() })
        expect(readdirSync(posix.join(rb, 'releases/v2')), label).toEqual(['keep'])
      }
    } finally {
      rmSync(localRoot, { recursive: true, force: true })
    }
  })
  it('ENOTEMPTY: rmdir of a non-empty directory', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'full'), user)
    writeOwned(posix.join(d, 'full', 'f'), 'x', user)
    await sftpError(sftp.rmdir(posix.join(d, 'full')), 'ENOTEMPTY', 4, posix.join(d, 'full'))
    expect(existsSync(posix.join(d, 'full', 'f'))).toBe(true)
  })
  it('ENOTDIR: rmdir of a file', async () => {
    const d = fresh()
    writeOwned(posix.join(d, 'file'), 'x', user)
    // OpenSSH answers SSH_FX_NO_SUCH_FILE (2) for ENOTDIR, older servers SSH_FX_FAILURE (4)
    await sftpError(sftp.rmdir(posix.join(d, 'file')), 'ENOTDIR', [2, 4], posix.join(d, 'file'))
    expect(existsSync(posix.join(d, 'file'))).toBe(true)
  })
  it('EISDIR: unlink of a directory, open of a directory for writing', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'dir'), user)
    await sftpError(sftp.unlink(posix.join(d, 'dir')), 'EISDIR', 4, posix.join(d, 'dir'))
    await sftpError(sftp.open(posix.join(d, 'dir'), 'w'), 'EISDIR', 4, posix.join(d, 'dir'))
    await sftpError(sftp.open(posix.join(d, 'dir'), 'r+'), 'EISDIR', 4, posix.join(d, 'dir'))
    await sftpError(sftp.writeFile(posix.join(d, 'dir'), 'x'), 'EISDIR', 4, posix.join(d, 'dir'))
    expect(statSync(posix.join(d, 'dir')).isDirectory()).toBe(true)
  })
  it('rename, links, truncate, read and readlink fail with the codes fs gives for the same thing', async () => {
    const d = fresh()
    const at = (n: string): string => posix.join(d, n)
    mkdirOwned(at('dir'), user)
    mkdirOwned(at('full'), user)
    writeOwned(at('full/f'), 'x', user)
    writeOwned(at('file'), 'x', user)
    const code = async (p: Promise<unknown>): Promise<string> => {
      const e = await rejection(p)
      expect(e).toBeInstanceOf(SftpError)
      return (e as unknown as SftpError).code
    }
    expect(await code(sftp.rename(at('file'), at('dir')))).toBe('EISDIR')
    expect(await code(sftp.rename(at('dir'), at('file')))).toBe('ENOTDIR')
    expect(await code(sftp.rename(at('dir'), at('full')))).toBe('ENOTEMPTY')
    expect(await code(sftp.rename(at('dir'), at('dir/inner')))).toBe('EINVAL')
    expect(await code(sftp.symlink('anything', at('file')))).toBe('EEXIST')
    expect(await code(sftp.hardlink(at('full/f'), at('file')))).toBe('EEXIST')
    expect(await code(sftp.truncate(at('dir')))).toBe('EISDIR')
    expect(await code(sftp.readlink(at('file')))).toBe('EINVAL')
    expect(await code(sftp.open(at('dir'), 'wx'))).toBe('EEXIST')
    // a path through a file
    expect(await code(sftp.open(at('file/x'), 'w'))).toBe('ENOTDIR')
    expect(await code(sftp.unlink(at('file/x')))).toBe('ENOTDIR')
    expect(await code(sftp.mkdir(at('file/x')))).toBe('ENOTDIR')
    // mkdir -p of an existing file is EEXIST, as fs.mkdir says
    expect(await code(sftp.mkdir(at('file'), { recursive: true }))).toBe('EEXIST')
    // reading a directory's handle
    const h = await sftp.open(at('dir'))
    expect(await code(h.read(Buffer.alloc(4)))).toBe('EISDIR')
    await h.close()
    const stream = sftp.createReadStream(at('dir'))
    stream.resume()
    const e = await withTimeout(new Promise<Error>((r) => stream.once('error', r)), 5000, 'the read stream error')
    expect((e as unknown as SftpError).code).toBe('EISDIR')
    // nothing moved
    expect(statSync(at('dir')).isDirectory()).toBe(true)
    expect(readFileSync(at('file'), 'utf8')).toBe('x')
  })
  it('EISDIR: readFile of a directory (as fs.readFile), with the path', async () => {
    const d = fresh()
    mkdirOwned(posix.join(d, 'dir'), user)
    await sftpError(sftp.readFile(posix.join(d, 'dir')), 'EISDIR', 4, posix.join(d, 'dir'))
  })
  it('bad arguments are ConfigErrors, raised before any request', async () => {
    const f = posix.join(work, 'never-created')
    await configError(sftp.stat(''), 'path')
    await configError(sftp.stat('a\0b'), 'path')
    await configError(sftp.stat(42 as unknown as string), 'path')
    await configError(sftp.readdir(''), 'path')
    await configError(sftp.chmod(f, 0o10000), 'mode')
    await configError(sftp.chmod(f, 'rwx'), 'mode')
    await configError(sftp.chmod(f, -1), 'mode')
    await configError(sftp.chown(f, -1, 0), 'uid')
    await configError(sftp.chown(f, 1.5, 0), 'uid')
    await configError(sftp.utimes(f, 'not a date', 0), 'atime')
    await configError(sftp.utimes(f, 0, NaN), 'mtime')
    await configError(sftp.truncate(f, 1.5), 'size')
    await configError(sftp.open(f, 'rw'), 'flags')
    await configError(sftp.open(f, 7 as unknown as string), 'flags')
    await configError(sftp.open(f, 'w', 0o77777), 'mode')
    await configError(sftp.writeFile(f, 'x', { flag: 'bogus' }), 'flags')
    await configError(sftp.mkdir(posix.join(work, 'bad-mode'), { mode: 0o20000 }), 'mode')
    await configError(sftp.symlink('', f), 'target')
    await configError(sftp.rename(f, ''), 'to')
    await configError(sftp.hardlink('', f), 'existing')
    await configError(sftp.copyFile(f, ''), 'to')
    await configError(() => sftp.createReadStream(f, { start: -1 }), 'start')
    await configError(() => sftp.createReadStream(f, { start: 1.5 }), 'start')
    await configError(() => sftp.createReadStream(f, { start: 10, end: 9 }), 'end')
    await configError(() => sftp.createReadStream(''), 'path')
    await configError(() => sftp.createWriteStream(''), 'path')
    await configError(() => sftp.createWriteStream(f, { mode: 0o10000 }), 'mode')
    await configError(sftp.download(f, ''), 'local')
    await configError(sftp.upload('', f), 'local')
    await configError(sftp.download(f, '/tmp/x', { concurrency: 0 }), 'concurrency')
    await configError(sftp.download(f, '/tmp/x', { concurrency: 1000 }), 'concurrency')
    await configError(sftp.upload('/etc/hostname', f, { chunkSize: 0 }), 'chunkSize')
    await configError(sftp.upload('/etc/hostname', f, { mode: 0o10000 }), 'mode')
    await configError(sftp.download(f, '/tmp/x', { fsync: 'yes' as unknown as boolean }), 'fsync')
    await configError(sftp.upload('/etc/hostname', f, { keepPartial: 1 as unknown as boolean }), 'keepPartial')
    await configError(sftp.download(f, '/tmp/x', { resume: null as unknown as boolean }), 'resume')
    await configError(sftp.download(f, '/tmp/x', { signal: 'nope' as unknown as AbortSignal }), 'signal')
    // wrong types: each a ConfigError naming the option, never the binding's conversion error
    await configError(sftp.truncate(f, 'x' as unknown as number), 'size')
    await configError(sftp.writeFile(f, 42 as unknown as string), 'data')
    await configError(sftp.writeFile(f, null as unknown as string), 'data')
    await configError(sftp.writeFile(f, 'x', { flag: 5 as unknown as string }), 'flag')
    await configError(sftp.writeFile(f, 'x', { encoding: 'klingon' as BufferEncoding }), 'encoding')
    await configError(sftp.readFile(f, { maxSize: -1 }), 'maxSize')
    await configError(sftp.readFile(f, 'klingon' as BufferEncoding), 'encoding')
    // as fs, a bare string or number is the mode: one that is no mode is a mode error
    await configError(sftp.mkdir(posix.join(work, 'bad-mode'), 'x' as never), 'mode')
    await configError(sftp.mkdir(posix.join(work, 'bad-mode'), true as never), 'options')
    await configError(() => sftp.createReadStream(f, { highWaterMark: -1 }), 'highWaterMark')
    await configError(() => sftp.createReadStream(f, { highWaterMark: 'x' as unknown as number }), 'highWaterMark')
    await configError(() => sftp.createReadStream(f, { concurrency: 0 }), 'concurrency')
    await configError(() => sftp.createWriteStream(f, { flags: 5 as unknown as string }), 'flags')
    await configError(() => sftp.createWriteStream(f, { start: -1 }), 'start')
    await configError(() => sftp.createWriteStream(f, { concurrency: 1.5 }), 'concurrency')
    await configError(sftp.download(f, '/tmp/x', { onProgress: 'log' as never }), 'onProgress')
    await configError(sftp.downloadDir(f, join(tmpdir(), 'ferrossh-never'), { symlinks: 'copy' as never }), 'symlinks')
    await configError(sftp.downloadDir(f, join(tmpdir(), 'ferrossh-never'), { fileConcurrency: 0 }), 'fileConcurrency')
    await configError(sftp.uploadDir('/etc', posix.join(work, 'never-dir'), { filter: true as never }), 'filter')
    await configError(sftp.uploadDir('/etc', posix.join(work, 'never-dir'), { concurrency: 0 }), 'concurrency')
    expect(existsSync(f)).toBe(false)
    expect(existsSync(posix.join(work, 'bad-mode'))).toBe(false)
    expect(existsSync(posix.join(work, 'never-dir'))).toBe(false)
    expect(existsSync(join(tmpdir(), 'ferrossh-never'))).toBe(false)
  })
  it('null options mean none, as in fs', async () => {
    const d = fresh()
    await sftp.mkdir(posix.join(d, 'n'), null as never)
    expect((await sftp.stat(posix.join(d, 'n'), null as never)).isDirectory()).toBe(true)
    await sftp.writeFile(posix.join(d, 'n', 'f'), 'abc', null as never)
    expect((await sftp.readFile(posix.join(d, 'n', 'f'), null as never)).toString()).toBe('abc')
    expect(await sftp.readdir(posix.join(d, 'n'), null as never)).toEqual(['f'])
    const local = join(tmpdir(), `ferrossh-null-${process.pid}`)
    try {
      expect(await sftp.download(posix.join(d, 'n', 'f'), local, null as never)).toBe(3)
      expect(readFileSync(local, 'utf8')).toBe('abc')
    } finally {
      rmSync(local, { force: true })
    }
  })
  it('file handles check their read and write arguments', async () => {
    const d = fresh()
    const p = posix.join(d, 'h')
    await sftp.writeFile(p, '0123456789')
    await using h = await sftp.open(p, 'r+')
    const buf = Buffer.alloc(4)
    await configError(h.read('x' as never), 'buffer')
    await configError(h.read(buf, 5), 'offset')
    await configError(h.read(buf, 1, 4), 'length')
    await configError(h.read(buf, 0, 4, -2), 'position')
    await configError(h.write('x', -2), 'position')
    await configError(h.write(42 as never), 'data')
    await configError(h.write('x', 1.5), 'position')
    await configError(h.truncate(1.5), 'size')
    // and a good read and write still work on the same handle
    expect((await h.read(buf, 1, 3, 2)).bytesRead).toBe(3)
    expect(buf.subarray(1).toString()).toBe('234')
    await h.write(new Uint8Array([65, 66]), 0)
    expect((await sftp.readFile(p)).toString()).toBe('AB23456789')
  })
})

describe("fs options the calls take", () => {
  it("a stream's signal destroys it with an AbortError carrying the reason, and closes the remote file, as fs's streams", async () => {
    const d = fresh()
    const big = posix.join(d, 'big')
    writeOwned(big, randomBytes(8 * MiB), user)
    const conn = await connect(options())
    try {
      const s = await conn.sftp()
      const pid = await sftpServerPid(conn)
      // a read stream part way through
      const ac = new AbortController()
      const rs = s.createReadStream(big, { highWaterMark: 64 * KiB, signal: ac.signal })
      await withTimeout(new Promise((r) => rs.once('readable', r)), 10_000, 'first data')
      expect(openFiles(pid)).toContain(big)
      const rsError = new Promise<Error>((r) => rs.once('error', r))
      ac.abort('enough')
      const re = await withTimeout(rsError, 10_000, 'read stream error')
      expect({ name: re.name, code: (re as SftpError).code, cause: re.cause }).toEqual({ name: 'AbortError', code: 'ABORT_ERR', cause: 'enough' })
      expect(rs.destroyed).toBe(true)
      await until(() => !openFiles(pid).includes(big), 5000, 'read handle closed', () => openFiles(pid))
      // a write stream with writes in flight
      const out = posix.join(d, 'out')
      const wac = new AbortController()
      const ws = s.createWriteStream(out, { signal: wac.signal })
      await withTimeout(new Promise((r) => ws.once('ready', r)), 10_000, 'write stream open')
      ws.write(randomBytes(MiB))
      expect(openFiles(pid)).toContain(out)
      const wsError = new Promise<Error>((r) => ws.once('error', r))
      const reason = new Error('stop')
      wac.abort(reason)
      const we = await withTimeout(wsError, 10_000, 'write stream error')
      expect({ name: we.name, cause: we.cause }).toEqual({ name: 'AbortError', cause: reason })
      await until(() => !openFiles(pid).includes(out), 5000, 'write handle closed', () => openFiles(pid))
      // a signal aborted already: the stream errors at once, and leaves no handle open
      const pre = AbortSignal.abort()
      for (const st of [s.createReadStream(big, { signal: pre }), s.createWriteStream(posix.join(d, 'pre'), { signal: pre })]) {
        const e = await withTimeout(new Promise<Error>((r) => st.once('error', r)), 10_000, 'pre-aborted stream')
        expect(e.name).toBe('AbortError')
      }
      await until(() => !openFiles(pid).some((f) => f.startsWith(d)), 5000, 'no handle left', () => openFiles(pid))
      // not a signal: a ConfigError before anything is opened
      await configError(() => s.createReadStream(big, { signal: 'x' as never }), 'signal')
      await configError(() => s.createWriteStream(out, { signal: {} as never }), 'signal')
      expect((await s.stat(big)).size).toBe(8 * MiB) // the session is still fine
    } finally {
      await conn.close()
    }
  })
  it('FileHandle.read takes any TypedArray or DataView, and a position of -1 reads and writes at the current position, as fs does', async () => {
    const d = fresh()
    const content = Buffer.from('0123456789abcdefghijklmnopqrstuv')
    const remote = posix.join(d, 'f')
    writeOwned(remote, content, user)
    const local = join(tmpdir(), `ferrossh-views-${process.pid}-${++seq}`)
    writeFileSync(local, content)
    type H = { read(...a: unknown[]): Promise<{ bytesRead: number; buffer: unknown }>; write(...a: unknown[]): Promise<{ bytesWritten: number }>; close(): Promise<void> }
    /** The same calls on a handle: what each returns, as plain values. */
    const run = async (h: H): Promise<unknown[]> => {
      const out: unknown[] = []
      const i32 = new Int32Array(4)
      let r = await h.read(i32, 0, 16, 0)
      out.push(r.bytesRead, r.buffer === i32, Array.from(i32))
      const dv = new DataView(new ArrayBuffer(12), 2, 8)
      r = await h.read(dv, 1, 6, 3)
      out.push(r.bytesRead, r.buffer === dv, Buffer.from(dv.buffer).toString('latin1'))
      const f64 = new Float64Array(2)
      r = await h.read(f64, { position: 8 })
      out.push(r.bytesRead, r.buffer === f64, Buffer.from(f64.buffer).toString('latin1'))
      const u16 = new Uint16Array(3)
      r = await h.read({ buffer: u16, position: 20 })
      out.push(r.bytesRead, r.buffer === u16, Buffer.from(u16.buffer).toString('latin1'))
      // -1: the current position, which these reads at the current position advance
      const b = Buffer.alloc(4)
      for (let k = 0; k < 2; k++) {
        r = await h.read(b, 0, 4, -1)
        out.push(r.bytesRead, b.toString('latin1'))
      }
      r = await h.read(b, { position: -1 })
      out.push(r.bytesRead, b.toString('latin1'))
      out.push((await h.write(Buffer.from('XY'), 0, 2, -1)).bytesWritten)
      out.push((await h.write('Z', -1)).bytesWritten)
      r = await h.read(b, 0, 4, -1)
      out.push(r.bytesRead, b.toString('latin1'))
      await h.close()
      return out
    }
    try {
      const want = await run((await fsp.open(local, 'r+')) as unknown as H)
      const got = await run((await sftp.open(remote, 'r+')) as unknown as H)
      expect(got).toEqual(want)
      expect(readFileSync(remote).equals(readFileSync(local))).toBe(true)
      expect(want[1]).toBe(true)
    } finally {
      rmSync(local, { force: true })
    }
  })
  it("a misspelt option of any SFTP call is a ConfigError naming the likely one, before any request, as connect() and exec() refuse theirs", async () => {
    const d = fresh()
    const f = posix.join(d, 'f')
    writeOwned(f, '0123456789', user)
    const local = join(tmpdir(), `ferrossh-opts-${process.pid}-${++seq}`)
    mkdirSync(local)
    try {
      const h = await sftp.open(f, 'r+')
      const cases: [string, () => unknown, string, string | undefined][] = [
        ['stat', () => sftp.stat(f, { bigInt: true } as never), 'bigInt', 'bigint'],
        ['lstat', () => sftp.lstat(f, { bignt: true } as never), 'bignt', 'bigint'],
        ['stat', () => h.stat({ big: true } as never), 'big', 'bigint'],
        ['read', () => h.read({ buffer: Buffer.alloc(4), postion: 0 } as never), 'postion', 'position'],
        ['read', () => h.read(Buffer.alloc(4), { ofset: 0 } as never), 'ofset', 'offset'],
        ['write', () => h.write(Buffer.from('x'), { lenght: 1 } as never), 'lenght', 'length'],
        ['mkdir', () => sftp.mkdir(posix.join(d, 'm'), { recusive: true } as never), 'recusive', 'recursive'],
        ['rm', () => sftp.rm(f, { froce: true } as never), 'froce', 'force'],
        ['rmdir', () => sftp.rmdir(d, { recursiv: true } as never), 'recursiv', 'recursive'],
        ['readdir', () => sftp.readdir(d, { withFileType: true } as never), 'withFileType', 'withFileTypes'],
        ['readFile', () => sftp.readFile(f, { encodng: 'utf8' } as never), 'encodng', 'encoding'],
        ['writeFile', () => sftp.writeFile(f, 'x', { flags: 'a' } as never), 'flags', 'flag'],
        ['appendFile', () => sftp.appendFile(f, 'x', { mod: 0o600 } as never), 'mod', 'mode'],
        ['createReadStream', () => sftp.createReadStream(f, { highWatermark: 4 } as never), 'highWatermark', 'highWaterMark'],
        ['createWriteStream', () => sftp.createWriteStream(f, { flag: 'a' } as never), 'flag', 'flags'],
        ['download', () => sftp.download(f, join(local, 'x'), { chunksize: 4 } as never), 'chunksize', 'chunkSize'],
        ['upload', () => sftp.upload(join(local, 'x'), f, { keepPartal: true } as never), 'keepPartal', 'keepPartial'],
        ['downloadDir', () => sftp.downloadDir(d, local, { symlink: 'preserve' } as never), 'symlink', 'symlinks'],
        ['uploadDir', () => sftp.uploadDir(local, d, { fileconcurrency: 2 } as never), 'fileconcurrency', 'fileConcurrency'],
        ['uploadDir', () => sftp.uploadDir(local, d, { xyzzy: 1 } as never), 'xyzzy', undefined],
      ]
      for (const [name, run, option, hint] of cases) {
        let e: unknown
        try { await run() } catch (x) { e = x }
        expect(e, `${name} ${option}`).toBeInstanceOf(ConfigError)
        const c = e as ConfigError
        expect({ option: c.option, message: c.message }).toEqual({
          option,
          message: hint ? `${name}: unknown option '${option}'; did you mean '${hint}'?` : `${name}: unknown option '${option}'`,
        })
      }
      await h.close()
      // nothing was sent: no file made, none changed, no tree copied
      expect(readFileSync(f, 'utf8')).toBe('0123456789')
      expect(readdirSync(d)).toEqual(['f'])
      expect(readdirSync(local)).toEqual([])
      // the names fs takes still work: retries accepted, appendFile's flag, readFile's 'r'
      await sftp.appendFile(f, '!', { flag: 'a' })
      expect(await sftp.readFile(f, { encoding: 'utf8', flag: 'r' })).toBe('0123456789!')
      await configError(sftp.readFile(f, { flag: 'w' }), 'flag')
      await sftp.rm(posix.join(d, 'missing'), { force: true, maxRetries: 2, retryDelay: 10 })
      await sftp.writeFile(posix.join(d, 'g'), 'x')
      await sftp.appendFile(posix.join(d, 'g'), 'y', { flag: 'ax' }).catch((e: SftpError) => expect(e.code).toBe('EEXIST'))
      expect(readFileSync(posix.join(d, 'g'), 'utf8')).toBe('x')
    } finally {
      rmSync(local, { recursive: true, force: true })
    }
  })
})
