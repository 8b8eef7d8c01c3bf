// The built-in SFTP server: every operation through OpenSSH's sftp client and the ferrossh
// SFTP client, and the confinement to its root (`..`, absolute paths, symlinks out of it).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { chownSync, closeSync, constants as fsConstants, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { connect, SftpError, type SftpClient } from '../dist/cjs/index.js'
import { rejection, withTimeout } from './fixtures/helpers'
import { sftpBatch, startServer, type TestServer } from './fixtures/server'

let t: TestServer
let root: string
let outside: string

function resetRoot(): void {
  rmSync(root, { recursive: true, force: true })
  mkdirSync(join(root, 'dir'), { recursive: true })
  writeFileSync(join(root, 'hello.txt'), 'hello\n')
  writeFileSync(join(root, 'dir', 'inner.txt'), 'inner\n')
  // planted by the host, not by a client: links that lead out of the root
  symlinkSync(join(outside, 'secret.txt'), join(root, 'secret-link'))
  symlinkSync(outside, join(root, 'outside-dir'))
  symlinkSync('../outside/secret.txt', join(root, 'relative-out'))
  symlinkSync('hello.txt', join(root, 'hello-link'))
}

let base: string

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'ferrossh-sftp-root-'))
  root = join(base, 'root')
  outside = join(base, 'outside')
  mkdirSync(root)
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret.txt'), 'top secret\n')
  t = await startServer({ sftp: { root } })
})
afterAll(async () => {
  await t?.stop()
  if (base) rmSync(base, { recursive: true, force: true })
})
beforeEach(() => resetRoot())

async function batch(lines: string[]): Promise<{ out: string; err: string; status: number | null }> {
  const r = await sftpBatch(t, lines)
  return { out: r.stdout, err: r.stderr, status: r.status }
}

describe('operations through OpenSSH sftp', () => {
  it('starts in / and lists the root', async () => {
    const r = await batch(['pwd', 'ls -1'])
    expect(r.status, r.err).toBe(0)
    expect(r.out).toContain('Remote working directory: /')
    expect(r.out).toMatch(/hello\.txt/)
    expect(r.out).toMatch(/dir/)
  })

  it('ls -l shows each entry as OpenSSH sftp-server writes it: type letter, links, owner, size, time', async () => {
    execFileSync('mkfifo', [join(root, 'dir', 'fifo')])
    const r = await batch(['ls -l /', 'ls -l /dir'])
    expect(r.status, r.err).toBe(0)
    const line = (name: string): string => r.out.split('\n').find((l) => l.trim().endsWith(` ${name}`)) ?? ''
    expect(line('hello-link')).toMatch(/^lrwxrwxrwx +1 /)
    expect(line('fifo')).toMatch(/^p[rw-]{9} +1 /)
    // a directory's link count is at least 2 (itself and its '.')
    expect(line('dir')).toMatch(/^d[rwx-]{9} +([2-9]|\d\d+) /)
    expect(line('hello.txt')).toMatch(/^-[rwx-]{9} +1 +\d+ +\d+ +6 [A-Z][a-z]{2} [ \d]\d /)
  })

  it('gets, puts, appends and preserves', async () => {
    const up = join(t.dir, 'up.bin')
    const data = randomBytes(700_000)
    writeFileSync(up, data)
    const down = join(t.dir, 'down.txt')
    // an interrupted upload, finished by reput (resume from the remote size)
    writeFileSync(join(root, 'dir', 'up.bin'), data.subarray(0, 300_000))
    const r = await batch([`get hello.txt ${down}`, `reput ${up} dir/up.bin`, `put -p ${up} preserved.bin`, `put ${up} plain.bin`])
    expect(r.status, r.err).toBe(0)
    expect(readFileSync(down, 'utf8')).toBe('hello\n')
    expect(readFileSync(join(root, 'dir', 'up.bin')).equals(data)).toBe(true)
    expect(readFileSync(join(root, 'plain.bin')).equals(data)).toBe(true)
    expect(Math.floor(statSync(join(root, 'preserved.bin')).mtimeMs / 1000)).toBe(Math.floor(statSync(up).mtimeMs / 1000))
  })

  it('makes and removes directories and files, renames, links', async () => {
    const r = await batch([
      'mkdir made', 'rename hello.txt made/moved.txt', 'ln -s moved.txt made/link', 'ln made/moved.txt hard.txt',
      'chmod 600 hard.txt', 'rm dir/inner.txt', 'rmdir dir', 'ls -l made',
    ])
    expect(r.status, r.err).toBe(0)
    expect(readFileSync(join(root, 'made', 'moved.txt'), 'utf8')).toBe('hello\n')
    expect(existsSync(join(root, 'hello.txt'))).toBe(false)
    expect(readlinkSync(join(root, 'made', 'link'))).toBe('moved.txt')
    expect(statSync(join(root, 'hard.txt')).ino).toBe(statSync(join(root, 'made', 'moved.txt')).ino)
    expect(statSync(join(root, 'hard.txt')).mode & 0o777).toBe(0o600)
    expect(existsSync(join(root, 'dir'))).toBe(false)
    expect(r.out).toMatch(/moved\.txt/)
  })

  it('answers df (statvfs@openssh.com) and follows links inside the root', async () => {
    const r = await batch(['df', `get hello-link ${join(t.dir, 'via-link.txt')}`])
    expect(r.status, r.err).toBe(0)
    expect(r.out).toMatch(/Size\s+Used\s+Avail/)
    expect(readFileSync(join(t.dir, 'via-link.txt'), 'utf8')).toBe('hello\n')
  })
})

describe('confinement', () => {
  it.each([
    ['.. above the root', '../outside/secret.txt'],
    ['.. hidden in a path', 'dir/../../outside/secret.txt'],
    ['an absolute path outside', '/etc/passwd'],
    ['a symlink to a file outside', 'secret-link'],
    ['a relative symlink out', 'relative-out'],
    ['a symlink to a directory outside', 'outside-dir/secret.txt'],
  ])('refuses reading through %s', async (_what, path) => {
    const dest = join(t.dir, 'leak.txt')
    rmSync(dest, { force: true })
    const r = await batch([`get ${path} ${dest}`])
    expect(r.status).not.toBe(0)
    expect(existsSync(dest)).toBe(false)
  })

  it('resolves absolute paths inside the root', async () => {
    const dest = join(t.dir, 'abs.txt')
    const r = await batch([`get /dir/inner.txt ${dest}`])
    expect(r.status, r.err).toBe(0)
    expect(readFileSync(dest, 'utf8')).toBe('inner\n')
  })

  it('refuses every change outside the root', async () => {
    const src = join(t.dir, 'payload.txt')
    writeFileSync(src, 'payload')
    const attempts = [
      `put ${src} ../outside/dropped.txt`, `put ${src} outside-dir/dropped.txt`, `put ${src} secret-link`,
      'mkdir ../outside/newdir', 'mkdir outside-dir/newdir', 'rm outside-dir/secret.txt', 'rm ../outside/secret.txt',
      'rename hello.txt ../outside/moved.txt', 'rename hello.txt outside-dir/moved.txt', 'ln -s /etc/passwd outside-dir/l',
      'ln -s ../../etc/passwd dir/escape', 'ln outside-dir/secret.txt hard-secret', 'chmod 777 outside-dir/secret.txt', 'chmod 777 secret-link',
      'rmdir outside-dir',
    ]
    for (const a of attempts) {
      const r = await batch([a])
      expect(r.status, `${a} should fail`).not.toBe(0)
    }
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('top secret\n')
    expect(statSync(join(outside, 'secret.txt')).mode & 0o777).not.toBe(0o777)
    expect(existsSync(join(outside, 'dropped.txt'))).toBe(false)
    expect(existsSync(join(outside, 'newdir'))).toBe(false)
    expect(existsSync(join(outside, 'moved.txt'))).toBe(false)
    expect(existsSync(join(root, 'hard-secret'))).toBe(false)
    expect(existsSync(join(root, 'dir', 'escape'))).toBe(false)
    expect(existsSync(join(root, 'hello.txt'))).toBe(true)
    expect(lstatSync(join(root, 'outside-dir')).isSymbolicLink()).toBe(true)
  })

  it('keeps cd and realpath at the root', async () => {
    const r = await batch(['-cd ..', 'pwd', '-cd outside-dir', 'pwd', 'cd dir', 'pwd'])
    expect(r.out).not.toContain(outside)
    expect(r.out).toContain('Remote working directory: /dir')
  })

  it('answers realpath of /.. at the root with /, as a chrooted sftp-server does', async () => {
    const r = await batch(['cd ..', 'pwd', 'cd /dir/../..', 'pwd'])
    expect(r.status, r.err).toBe(0)
    expect(r.out).toContain('Remote working directory: /\n')
    expect(r.out).not.toContain('Remote working directory: /dir')
    expect(r.out).not.toContain(outside)
  })

  it('checks a created symlink from the directory it really lands in (through deep -> .)', async () => {
    const r = await batch([
      'symlink . deep',
      '-symlink ../outside/secret.txt deep/leak', '-symlink .. deep/up', '-symlink ../.. deep/deep/up2',
      '-symlink deep/../outside/secret.txt via', '-symlink /deep/../../outside/secret.txt abs-via',
      'symlink ../hello.txt deep/dir/ok',
    ])
    expect(r.status, r.err).toBe(0)
    for (const name of ['leak', 'up', 'up2', 'via', 'abs-via']) expect(lstatSync(join(root, name), { throwIfNoEntry: false }), name).toBeUndefined()
    expect(readlinkSync(join(root, 'deep'))).toBe('.')
    expect(readFileSync(join(root, 'dir', 'ok'), 'utf8')).toBe('hello\n')
  })

  it('stores absolute symlink targets inside the root', async () => {
    const r = await batch(['ln -s /hello.txt abs-link', `get abs-link ${join(t.dir, 'abs-link.txt')}`])
    expect(r.status, r.err).toBe(0)
    expect(readFileSync(join(t.dir, 'abs-link.txt'), 'utf8')).toBe('hello\n')
    expect(readlinkSync(join(root, 'abs-link'))).toBe(join(realpathSync(root), 'hello.txt'))
  })
})

describe('a client racing its own requests with a directory swapped for a symlink', () => {
  // while requests run, another process keeps swapping `race` between a real directory and a
  // symlink to `outside`: nothing a request creates, links or truncates may land outside
  async function raced(work: (sftp: SftpClient, i: number) => Promise<unknown>): Promise<void> {
    const raceDir = join(root, 'race')
    mkdirSync(join(root, 'race.dir'))
    writeFileSync(join(root, 'race.dir', 'secret.txt'), 'decoy\n')
    writeFileSync(join(outside, 'victim.txt'), 'keep me\n')
    writeFileSync(join(root, 'race.dir', 'victim.txt'), 'inside\n')
    symlinkSync(outside, join(root, 'race.link'))
    const swapper = spawn('python3', ['-c', `
import os, sys, time
os.chdir(sys.argv[1]); end = time.time() + 30
while time.time() < end:
    os.rename('race.dir', 'race'); os.rename('race', 'race.dir')
    os.rename('race.link', 'race'); os.rename('race', 'race.link')
`, root], { stdio: 'ignore' })
    const swapperGone = new Promise((r) => swapper.once('exit', r))
    swapper.once('error', () => {})
    const ssh = await connect({ host: t.host, port: t.port, username: 'u', password: 'secret', hostKey: 'insecure-accept-any' })
    try {
      const sftp = await ssh.sftp()
      const until = Date.now() + 2500
      let i = 0
      while (Date.now() < until) {
        await Promise.all(Array.from({ length: 16 }, () => work(sftp, i++).catch(() => {})))
      }
      await sftp.close()
    } finally {
      swapper.kill()
      await ssh.close()
      await swapperGone
      rmSync(raceDir, { force: true, recursive: true })
    }
  }
  it('open with create or truncate', async () => {
    await raced((sftp, i) => i % 2 ? sftp.writeFile(`/race/new-${i}`, 'x') : sftp.writeFile('/race/victim.txt', ''))
    expect(readdirSync(outside).sort()).toEqual(['secret.txt', 'victim.txt'])
    expect(readFileSync(join(outside, 'victim.txt'), 'utf8')).toBe('keep me\n')
  })
  it('hardlink', async () => {
    await raced((sftp, i) => sftp.hardlink('/race/secret.txt', `/stolen-${i}`))
    for (const n of readdirSync(root).filter((x) => x.startsWith('stolen-'))) {
      expect(readFileSync(join(root, n), 'utf8')).toBe('decoy\n')
    }
  })
})

describe('read-only and the ferrossh client', () => {
  it('a read-only root refuses changes but serves reads', async () => {
    const ro = await startServer({ sftp: { root, readOnly: true } })
    try {
      const src = join(t.dir, 'payload.txt')
      writeFileSync(src, 'x')
      const bad = await sftpBatch(ro, [`put ${src} new.txt`])
      expect(bad.status).not.toBe(0)
      expect(bad.stderr).toMatch(/Permission denied/)
      const ok = await sftpBatch(ro, [`get hello.txt ${join(t.dir, 'ro.txt')}`])
      expect(ok.status, ok.stderr).toBe(0)
      expect(existsSync(join(root, 'new.txt'))).toBe(false)
    } finally {
      await ro.stop()
    }
  })

  it('refuses to open a FIFO at once: opens of one cannot hold every blocking thread', async () => {
    const fifo = join(root, 'pipe')
    execFileSync('mkfifo', [fifo])
    const ssh = await connect({ host: t.host, port: t.port, username: 'tester', privateKeyPath: t.clientKey.path, hostKey: 'insecure-accept-any' })
    try {
      // more than the blocking threads there are, each from its own SFTP session
      const sessions = await Promise.all(Array.from({ length: 10 }, () => ssh.sftp()))
      const opens = await withTimeout(Promise.all(sessions.flatMap((s) => [rejection(s.open('/pipe', 'r'), 10_000), rejection(s.open('/pipe', 'w'), 10_000)])), 15_000, 'FIFO opens answered')
      for (const e of opens) expect(e).toBeInstanceOf(SftpError)
      expect((await withTimeout(sessions[0].readFile('/hello.txt'), 5_000, 'readFile after')).toString()).toBe('hello\n')
      expect((await withTimeout(sessions[0].lstat('/pipe'), 5_000, 'lstat')).mode & 0o170000).toBe(0o010000)
      await Promise.all(sessions.map((s) => s.close()))
    } finally {
      // a server that did block in open(2): release its threads so the suite can end
      for (let i = 0; i < 32; i++) {
        try { closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)) } catch { break }
      }
      await ssh.close()
    }
  })

  it('serves the ferrossh SFTP client', async () => {
    const ssh = await connect({ host: t.host, port: t.port, username: 'tester', privateKeyPath: t.clientKey.path, hostKey: 'insecure-accept-any' })
    const sftp = await ssh.sftp()
    try {
      expect((await sftp.readdir('/')).sort()).toEqual(['dir', 'hello-link', 'hello.txt', 'outside-dir', 'relative-out', 'secret-link'])
      expect((await sftp.readFile('/hello.txt')).toString()).toBe('hello\n')
      const data = randomBytes(1024 * 1024 + 17)
      await sftp.writeFile('/dir/big.bin', data)
      expect(readFileSync(join(root, 'dir', 'big.bin')).equals(data)).toBe(true)
      expect((await sftp.stat('/dir/big.bin')).size).toBe(data.length)
      expect((await sftp.lstat('/hello-link')).isSymbolicLink()).toBe(true)
      expect(await sftp.realpath('/dir/../dir')).toBe('/dir')
      const e = await rejection(sftp.readFile('/secret-link'))
      expect(e).toBeInstanceOf(SftpError)
      expect(e.code).toBe('EACCES')
      expect((await rejection(sftp.stat('/nope'))).code).toBe('ENOENT')
    } finally {
      await sftp.close()
      await ssh.close()
    }
  })

  it('lists names that are not UTF-8 (shown lossily) and answers a dangling link inside the root as missing, as stat(2) does', async () => {
    const d = join(root, 'dir', `odd-${randomBytes(3).toString('hex')}`)
    mkdirSync(d)
    writeFileSync(join(d, 'ok'), 'x')
    writeFileSync(Buffer.concat([Buffer.from(`${d}/`), Buffer.from([0x78, 0xff, 0x79])]), 'y')
    symlinkSync('nothing-here', join(d, 'dangling'))
    const ssh = await connect({ host: t.host, port: t.port, username: 'tester', privateKeyPath: t.clientKey.path, hostKey: 'insecure-accept-any' })
    const sftp = await ssh.sftp()
    try {
      const v = `/dir/${d.split('/').at(-1)}`
      expect((await sftp.readdir(v)).sort()).toEqual(['dangling', 'ok', 'x\uFFFDy'])
      expect((await rejection(sftp.stat(`${v}/dangling`))).code).toBe('ENOENT')
      expect(await sftp.exists(`${v}/dangling`)).toBe(false)
      expect((await sftp.lstat(`${v}/dangling`)).isSymbolicLink()).toBe(true)
    } finally {
      await sftp.close()
      await ssh.close()
      rmSync(d, { recursive: true, force: true })
    }
  })
})

describe('a server without privileges', () => {
  // root may chmod any file; a server running without that privilege must manage with the
  // owner's rights, as OpenSSH's sftp-server does. The server runs as root with every
  // capability dropped (setpriv): then it is the owner of what it creates and nothing more.
  let dir: string
  let child: ChildProcess | undefined
  let port = 0
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ferrossh-sftp-nocaps-'))
    mkdirSync(join(dir, 'root'))
    const script = `const { createServer } = require(${JSON.stringify(resolve(__dirname, '../dist/cjs/index.js'))});
      const server = createServer({ auth: { password: (_c, pw) => pw === 'secret' }, sftp: { root: process.argv[1] } });
      server.listen(0, '127.0.0.1').then(() => console.log(server.address().port));`
    child = spawn('setpriv', ['--bounding-set=-all', '--inh-caps=-all', '--', process.execPath, '-e', script, join(dir, 'root')], { stdio: ['ignore', 'pipe', 'inherit'] })
    port = await new Promise<number>((res, rej) => {
      child!.stdout!.once('data', (d: Buffer) => res(Number(String(d).trim())))
      child!.once('error', rej)
      child!.once('exit', (c) => rej(new Error(`the server exited with ${c}`)))
    })
  })
  afterAll(() => {
    child?.kill()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })
  it('chmod and utimes of its own mode-000 file work; truncating it is refused', async () => {
    const ssh = await connect({ host: '127.0.0.1', port, username: 'u', password: 'secret', hostKey: 'insecure-accept-any' })
    try {
      const sftp = await ssh.sftp()
      await sftp.writeFile('/locked.txt', 'kept\n')
      await sftp.chmod('/locked.txt', 0)
      expect((await sftp.stat('/locked.txt')).mode & 0o777).toBe(0)
      await sftp.utimes('/locked.txt', 1_000_000, 2_000_000)
      const st = statSync(join(dir, 'root', 'locked.txt'))
      expect(st.mtimeMs).toBe(2_000_000_000)
      expect(st.atimeMs).toBe(1_000_000_000)
      // a truncation needs the file open for writing, which mode 000 forbids its owner too
      expect(await rejection(sftp.truncate('/locked.txt', 0))).toMatchObject({ code: 'EACCES' })
      await sftp.chmod('/locked.txt', 0o640)
      expect((await sftp.stat('/locked.txt')).mode & 0o777).toBe(0o640)
      expect(String(await sftp.readFile('/locked.txt'))).toBe('kept\n')
      // a file of another owner stays out of reach
      writeFileSync(join(dir, 'root', 'theirs.txt'), 'r\n')
      chownSync(join(dir, 'root', 'theirs.txt'), 65534, 65534)
      expect(await rejection(sftp.chmod('/theirs.txt', 0o666))).toMatchObject({ code: 'EACCES' })
      expect(statSync(join(dir, 'root', 'theirs.txt')).mode & 0o777).toBe(0o644)
      await sftp.close()
    } finally {
      await ssh.close()
    }
  })
})
