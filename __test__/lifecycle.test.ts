import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { connect, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

const LIBRARY = resolve(__dirname, '../dist/cjs/index.js')

let sshd: Sshd
let dir: string

const options = () => ({
  host: sshd.host, port: sshd.port, username: sshd.user,
  privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile },
})

beforeAll(async () => {
  sshd = await startSshd()
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-lifecycle-'))
})
afterAll(async () => {
  await sshd?.stop()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Child {
  proc: ChildProcess
  output: () => string
  /** Resolves when a line of stdout equals `line`. */
  line: (line: string, ms?: number) => Promise<void>
  /** Resolves with the exit code, or 'running' if the process is still alive after `ms`. */
  exit: (ms: number) => Promise<number | string | null>
}

/** Runs `body` in a fresh Node process with `ssh` options in scope and the library loaded. */
function runChild(name: string, body: string, env: Record<string, string> = {}): Child {
  const file = join(dir, `${name}.cjs`)
  writeFileSync(file, [
    `const { connect } = require(${JSON.stringify(LIBRARY)})`,
    'const options = JSON.parse(process.env.FERROSSH_TEST_OPTIONS)',
    ';(async () => {',
    body,
    '})().catch((e) => { console.error(e); process.exit(99) })',
  ].join('\n'))
  const proc = spawn(process.execPath, [file], {
    env: { ...process.env, FERROSSH_TEST_OPTIONS: JSON.stringify(options()), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  proc.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<number | string | null>((r) => proc.once('exit', (code, signal) => r(code ?? signal)))
  return {
    proc,
    output: () => `stdout: ${out}\nstderr: ${err}`,
    line: (line, ms = 15_000) => new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line '${line}' within ${ms} ms\n${out}\n${err}`)), ms)
      const check = (): void => {
        if (out.split('\n').includes(line)) { clearTimeout(timer); proc.stdout!.off('data', check); resolveLine() }
      }
      proc.stdout!.on('data', check)
      exited.then(() => { if (!out.split('\n').includes(line)) { clearTimeout(timer); reject(new Error(`exited before '${line}'\n${out}\n${err}`)) } })
      check()
    }),
    exit: (ms) => Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('running'), ms))]),
  }
}

/**
 * Child-script source defining `ownEstablished(port)`: how many of this process's own TCP
 * sockets are ESTABLISHED to `port` (its fds' socket inodes matched in /proc/self/net/tcp*).
 */
const OWN_ESTABLISHED = `
      const ownEstablished = (port) => {
        const fs = require('node:fs')
        const mine = new Set()
        for (const fd of fs.readdirSync('/proc/self/fd')) {
          try { const m = /^socket:\\[(\\d+)\\]$/.exec(fs.readlinkSync('/proc/self/fd/' + fd)); if (m) mine.add(m[1]) } catch {}
        }
        let n = 0
        for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
          let text = ''
          try { text = fs.readFileSync(file, 'utf8') } catch { continue }
          for (const row of text.split('\\n').slice(1)) {
            const c = row.trim().split(/\\s+/)
            if (c.length > 9 && c[3] === '01' && parseInt(c[2].split(':').pop(), 16) === port && mine.has(c[9])) n++
          }
        }
        return n
      }`

/** The child prints `started`, is still running half a second later, then prints `last` and exits 0. */
/** The end of a child script: unref()s `ssh` and says so, and reports at exit whether it was still connected. */
const UNREF_AND_REPORT = `
      ssh.unref()
      process.on('exit', () => console.log('exit closed=' + ssh.isClosed))
      console.log('unref')`

/** After the child unref()s, it exits by itself, still connected, without any of its calls ('… settled' / '… failed') settling. */
async function exitsWithCallsPending(child: Child): Promise<void> {
  try {
    await child.line('unref')
    expect(await child.exit(5000), child.output()).toBe(0)
    expect(child.output()).toContain('exit closed=false')
    expect(child.output()).not.toContain('settled')
    expect(child.output()).not.toContain('failed')
  } finally {
    child.proc.kill('SIGKILL')
  }
}

async function heldUntil(child: Child, started: string, last: string): Promise<void> {
  try {
    await child.line(started)
    expect(await child.exit(500), child.output()).toBe('running')
    await child.line(last, 10_000)
    expect(await child.exit(5000), child.output()).toBe(0)
  } finally {
    child.proc.kill('SIGKILL')
  }
}

describe('process lifetime', () => {
  it('an open, idle connection keeps the process alive', async () => {
    const child = runChild('idle', `
      const ssh = await connect(options)
      console.log('connected')
    `)
    try {
      await child.line('connected')
      expect(await child.exit(1500), child.output()).toBe('running')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('the process exits by itself with code 0 after close()', async () => {
    const child = runChild('close', `
      const ssh = await connect(options)
      console.log('connected')
      await ssh.close()
      console.log('closed')
    `)
    try {
      await child.line('closed')
      const t0 = Date.now()
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(Date.now() - t0).toBeLessThan(5000)
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('the process exits after close() even with a shell, a running command and a subsystem open', async () => {
    // every channel's wake callback must be released with the session, not only on channel close
    const child = runChild('close-busy', `
      const ssh = await connect(options)
      const sh = await ssh.shell()
      sh.resume()
      const p = ssh.spawn('sleep 30')
      p.stdout.resume()
      p.stderr.resume()
      const sub = await ssh.subsystem('sftp')
      sub.resume()
      console.log((await ssh.exec('echo ran')).stdout.toString().trim())
      await ssh.close()
      console.log('closed')
    `)
    try {
      await child.line('closed')
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output()).toContain('ran')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('connections from worker threads (one, then two at once) and then the main thread; the process exits after the last close', async () => {
    // the native runtime starts with the first environment that uses it and must serve every
    // later one, main thread included, after workers came and went
    const child = runChild('workers', `
      const { Worker } = require('node:worker_threads')
      const code = \`
        const { workerData, parentPort } = require('node:worker_threads')
        const { connect } = require(\${JSON.stringify(${JSON.stringify(LIBRARY)})})
        ;(async () => {
          const ssh = await connect(workerData)
          parentPort.postMessage((await ssh.exec('echo from-worker')).stdout.toString().trim())
          await ssh.close()
        })().catch((e) => parentPort.postMessage('error: ' + e.message))
      \`
      const inWorker = () => new Promise((resolve) => {
        const w = new Worker(code, { eval: true, workerData: options })
        let said = 'nothing'
        w.on('message', (m) => { said = m })
        w.on('exit', (code) => resolve(said + ' exit=' + code))
      })
      console.log(await inWorker())
      console.log((await Promise.all([inWorker(), inWorker()])).join(' | '))
      const ssh = await connect(options)
      console.log((await ssh.exec('echo from-main')).stdout.toString().trim())
      await ssh.close()
      console.log(await inWorker())
      console.log('done')
    `)
    try {
      await child.line('done', 30_000)
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output().replace(/^stdout: /, '').split('\n').slice(0, 5)).toEqual([
        'from-worker exit=0',
        'from-worker exit=0 | from-worker exit=0',
        'from-main',
        'from-worker exit=0',
        'done',
      ])
    } finally {
      child.proc.kill('SIGKILL')
    }
  }, 60_000)

  it('FERROSSH_WORKER_THREADS=2 (a multi-thread runtime) connects, streams and exits after close()', async () => {
    const child = runChild('pool', `
      const ssh = await connect(options)
      const p = ssh.spawn('head -c 3000000 /dev/zero')
      let n = 0
      p.stdout.on('data', (c) => { n += c.length })
      await p.exited
      console.log('bytes ' + n)
      await ssh.close()
      console.log('closed')
    `, { FERROSSH_WORKER_THREADS: '2' })
    try {
      await child.line('closed')
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output()).toContain('bytes 3000000')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('a FERROSSH_WORKER_THREADS that is not 1–16 gets a warning naming it, and connections still work', async () => {
    for (const bad of ['lots', '0', '17', ' 2', '+3']) {
      const child = runChild('bad-workers', `
        const ssh = await connect(options)
        console.log((await ssh.exec('echo fine')).stdout.toString().trim())
        await ssh.close()
      `, { FERROSSH_WORKER_THREADS: bad })
      try {
        expect(await child.exit(10_000), child.output()).toBe(0)
        expect(child.output()).toContain('fine')
        expect(child.output()).toContain(`FERROSSH_WORKER_THREADS must be a whole number from 1 to 16 (got ${JSON.stringify(bad)})`)
      } finally {
        child.proc.kill('SIGKILL')
      }
    }
  }, 60_000)

  it('unref() lets the process exit while still connected', async () => {
    const child = runChild('unref', `
      const ssh = await connect(options)
      ssh.unref()
      process.on('exit', () => console.log('exit closed=' + ssh.isClosed))
      console.log('connected')
    `)
    try {
      await child.line('connected')
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output()).toContain('exit closed=false')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('unref() lets the process exit when connected through a proxyJump hop it opened; ref()ed, the chain holds it', async () => {
    // the hop is the same server: a second connection of the chain, which only the target may hold
    const child = runChild('unref-jump', `
      const hop = { host: options.host, port: options.port, username: options.username }
      const ssh = await connect({ ...options, proxyJump: [hop] })
      console.log('via jump: ' + (await ssh.exec('echo ok')).stdout.toString().trim())
      setTimeout(() => { console.log('still held'); ssh.unref() }, 800).unref()
      process.on('exit', () => console.log('exit closed=' + ssh.isClosed))
    `)
    try {
      await child.line('via jump: ok')
      await child.line('still held', 5000)
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output()).toContain('exit closed=false')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('unref() lets the process exit while a command runs and a shell is open, as with a socket', async () => {
    const child = runChild('unref-busy', `
      const ssh = await connect(options)
      const p = ssh.spawn('sleep 30')
      p.stdout.resume()
      p.exited.then((s) => console.log('exited ' + JSON.stringify(s)))
      const sh = await ssh.shell()
      sh.resume()
      console.log((await ssh.exec('echo ran')).stdout.toString().trim())
      ssh.unref()
      process.on('exit', () => console.log('exit closed=' + ssh.isClosed))
      console.log('unref')
    `)
    try {
      await child.line('unref')
      expect(await child.exit(5000), child.output()).toBe(0)
      expect(child.output()).toContain('ran')
      expect(child.output()).toContain('exit closed=false')
      expect(child.output()).not.toContain('exited')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('a ref()ed connection stays alive while a command runs, and exited still arrives', async () => {
    const child = runChild('ref-busy', `
      const ssh = await connect(options)
      const p = ssh.spawn('sleep 1; exit 3')
      p.stdout.resume()
      console.log('spawned')
      const s = await p.exited
      console.log('exited ' + s.code)
      await ssh.close()
    `)
    await heldUntil(child, 'spawned', 'exited 3')
  })

  it('unref() lets the process exit while an exec() runs and a channel open waits for a slot', async () => {
    // a pending call follows its connection's ref, as a socket's pending write does
    const child = runChild('unref-pending', `
      const ssh = await connect({ ...options, maxSessions: 2 })
      const hold = ssh.spawn('sleep 30')
      hold.stdout.resume()
      hold.stderr.resume()
      await new Promise((r) => setTimeout(r, 300))
      ssh.exec('sleep 30').then(() => console.log('exec settled'), (e) => console.log('exec failed ' + e.code))
      const waiting = ssh.spawn('echo opened')
      waiting.stdout.on('data', () => console.log('open settled'))
      waiting.exited.then(() => console.log('waiting settled'), (e) => console.log('waiting failed ' + e.code))
      await new Promise((r) => setTimeout(r, 300))
      ${UNREF_AND_REPORT}
    `)
    await exitsWithCallsPending(child)
  })

  it('unref() lets the process exit while an SFTP call waits on the server', async () => {
    // sftp-server's open() of a FIFO blocks until a writer comes: the call stays in flight
    const child = runChild('unref-sftp', `
      const ssh = await connect(options)
      await ssh.exec('rm -f unref-sftp.fifo && mkfifo unref-sftp.fifo')
      const sftp = await ssh.sftp()
      sftp.open('unref-sftp.fifo', 'r').then(() => console.log('open settled'), (e) => console.log('open failed ' + e.code))
      await new Promise((r) => setTimeout(r, 300))
      ${UNREF_AND_REPORT}
    `)
    await exitsWithCallsPending(child)
    // sftp-server is still blocked in its open() of the FIFO and would stay so after sshd
    // stops: a writer (an O_RDWR open never blocks) lets it go, and its session ends
    const fifo = join(sshd.home, 'unref-sftp.fifo')
    closeSync(openSync(fifo, 'r+'))
    rmSync(fifo, { force: true })
  })

  it('an SFTP call in flight on a ref()ed connection keeps the process alive until it settles', async () => {
    const child = runChild('ref-sftp', `
      const ssh = await connect(options)
      await ssh.exec('rm -f ref-sftp.fifo && mkfifo ref-sftp.fifo')
      const sftp = await ssh.sftp()
      const opening = sftp.open('ref-sftp.fifo', 'r')
      ssh.unref()
      ssh.ref()
      console.log('started')
      // a writer turns up a second later on another channel; the open then completes
      ssh.exec('sleep 1; echo late > ref-sftp.fifo').catch(() => {})
      const file = await opening
      console.log('opened')
      ssh.unref()
      void file
    `)
    await heldUntil(child, 'started', 'opened')
  })

  it('a pending exec() on a ref()ed connection keeps the process alive, even after unref() and ref()', async () => {
    const child = runChild('ref-pending', `
      const ssh = await connect(options)
      const done = ssh.exec('sleep 1; echo late')
      ssh.unref()
      ssh.ref()
      console.log('started')
      console.log((await done).stdout.toString().trim())
      ssh.unref()
    `)
    await heldUntil(child, 'started', 'late')
  })

  it("a pending exec() still gets its error when the connection closes under it and nothing else holds the process", async () => {
    const child = runChild('pending-close', `
      const ssh = await connect(options)
      ssh.exec('sleep 30').then(() => console.log('exec settled'), (e) => console.log('exec failed ' + e.code))
      ssh.on('close', () => console.log('closed'))
      setTimeout(() => { void ssh.close() }, 300)
    `)
    try {
      expect(await child.exit(10_000), child.output()).toBe(0)
      expect(child.output()).toContain('exec failed ERR_SSH_DISCONNECTED')
      expect(child.output()).toContain('closed')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('a connect that times out or is aborted while hostKey.verify is still pending lets the process exit, and closes its connection', async () => {
    // the verify callback is a prompt nobody answers; it lives in russh's session task, which
    // must end with the connect (its socket and the callback's hold on the process with it)
    const child = runChild('verify-pending', `
      ${OWN_ESTABLISHED}
      // the answers a prompt would give, kept as a prompt keeps them: never called
      const unanswered = []
      let ac
      const verify = () => { console.log('asked'); if (ac) setTimeout(() => ac.abort(), 50); return new Promise((answer) => unanswered.push(answer)) }
      await connect({ ...options, hostKey: { verify }, connectTimeout: 2000 }).then(() => console.log('connected'), (e) => console.log('timeout: ' + e.name + ' ' + e.phase))
      ac = new AbortController()
      await connect({ ...options, hostKey: { verify }, signal: ac.signal }).then(() => console.log('connected'), (e) => console.log('abort: ' + e.name))
      await new Promise((r) => setTimeout(r, 300))
      console.log('established ' + ownEstablished(options.port))
      console.log('done')
    `)
    try {
      await child.line('done')
      expect(child.output()).toContain('established 0')
      expect(await child.exit(3000), child.output()).toBe(0)
      const out = child.output()
      expect(out.replace(/^stdout: /, '').split('\n').filter((l) => l === 'asked').length, out).toBe(2)
      expect(out).toContain('timeout: TimeoutError handshake')
      expect(out).toContain('abort: AbortError')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('a connect that times out or is aborted while keyboardInteractive is still pending lets the process exit, and closes its connection', async () => {
    const pam = await startSshd({ replace: { UsePAM: 'yes', KbdInteractiveAuthentication: 'yes' } })
    const kbdOptions = { host: pam.host, port: pam.port, username: pam.user, hostKey: { knownHosts: pam.knownHostsFile } }
    const child = runChild('kbd-pending', `
      ${OWN_ESTABLISHED}
      const unanswered = []
      let ac
      const keyboardInteractive = () => { console.log('asked'); if (ac) setTimeout(() => ac.abort(), 50); return new Promise((answer) => unanswered.push(answer)) }
      await connect({ ...options, keyboardInteractive, connectTimeout: 2000 }).then(() => console.log('connected'), (e) => console.log('timeout: ' + e.name + ' ' + e.phase))
      ac = new AbortController()
      await connect({ ...options, keyboardInteractive, signal: ac.signal }).then(() => console.log('connected'), (e) => console.log('abort: ' + e.name))
      await new Promise((r) => setTimeout(r, 300))
      console.log('established ' + ownEstablished(options.port))
      console.log('done')
    `, { FERROSSH_TEST_OPTIONS: JSON.stringify(kbdOptions) })
    try {
      await child.line('done')
      expect(child.output()).toContain('established 0')
      expect(await child.exit(3000), child.output()).toBe(0)
      const out = child.output()
      expect(out.replace(/^stdout: /, '').split('\n').filter((l) => l === 'asked').length, out).toBe(2)
      expect(out).toContain('timeout: TimeoutError auth')
      expect(out).toContain('abort: AbortError')
    } finally {
      child.proc.kill('SIGKILL')
      await pam.stop()
    }
  })

  it('every native task runs on the runtime thread: no other native threads appear', async () => {
    // a task sent to napi-rs's built-in runtime instead would start its "tokio-rt-worker"
    // threads, and the channels it opened would wake across them
    const child = runChild('threads', `
      const { readdirSync, readFileSync } = require('node:fs')
      const names = () => readdirSync('/proc/self/task').map((t) => readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim())
      const before = new Set(names())
      const ssh = await connect(options)
      await ssh.exec('true')
      const p = ssh.spawn('head -c 100000 /dev/zero')
      let n = 0
      p.stdout.on('data', (c) => { n += c.length })
      await p.exited
      const sh = await ssh.subsystem('sftp')
      sh.destroy()
      console.log('bytes ' + n)
      // the runtime's own thread (and its blocking pool) are named ferrossh
      console.log('new threads ' + JSON.stringify([...new Set(names())].filter((t) => !before.has(t) && t !== 'ferrossh').sort()))
      await ssh.close()
    `)
    try {
      expect(await child.exit(15_000), child.output()).toBe(0)
      expect(child.output()).toContain('bytes 100000')
      expect(child.output()).toContain('new threads []')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })

  it('ref() after unref() keeps the process alive again', async () => {
    const child = runChild('reref', `
      const ssh = await connect(options)
      ssh.unref()
      ssh.ref()
      console.log('connected')
    `)
    try {
      await child.line('connected')
      expect(await child.exit(1500), child.output()).toBe('running')
    } finally {
      child.proc.kill('SIGKILL')
    }
  })
})

describe('close()', () => {
  it("resolves `closed` with undefined and emits 'close' without an error", async () => {
    const ssh: SshClient = await connect(options())
    const events: unknown[][] = []
    ssh.on('close', (...args: unknown[]) => events.push(args))
    expect(ssh.isClosed).toBe(false)
    await ssh.close()
    expect(await ssh.closed).toBeUndefined()
    expect(ssh.isClosed).toBe(true)
    expect(events).toHaveLength(1)
    expect(events[0][0]).toBeUndefined()
    // closing twice is harmless, and nothing more is emitted
    await ssh.close()
    expect(events).toHaveLength(1)
    const after = await ssh.exec('true').then(() => null, (e: Error) => e)
    expect((after as { code?: string } | null)?.code).toBe('ERR_SSH_DISCONNECTED')
  })

  it('fails a running command and its open streams', async () => {
    const ssh = await connect(options())
    const p = ssh.spawn('sleep 30')
    const outcome = new Promise<string>((r) => {
      p.stdout.once('end', () => r('end'))
      p.stdout.once('error', (e: Error) => r(`error ${(e as { code?: string }).code}`))
      p.stdout.resume()
    })
    expect((await ssh.exec('echo up')).stdout.toString()).toBe('up\n')
    await ssh.close()
    // no EOF came from the server: the stream must not look complete
    expect(await outcome).toBe('error ERR_SSH_DISCONNECTED')
    const e = await p.exited.then(() => null, (err: Error) => err)
    expect((e as { code?: string } | null)?.code).toBe('ERR_SSH_DISCONNECTED')
  })
  it("an unref()'d embedded server still holds the process while a connection is open, as a net.Server's sockets do", async () => {
    const child = runChild('server-unref', `
      const { createServer } = require(${JSON.stringify(LIBRARY)})
      const server = createServer({
        auth: { none: true },
        // from here on nothing but the connection holds the process
        exec: async (s) => { clearInterval(hold); s.stdout.write('a\\n'); await new Promise((r) => setTimeout(r, 1500)); s.stdout.write('b\\n'); return 0 },
      })
      await server.listen(0, '127.0.0.1')
      server.unref()
      // held until the command starts
      const hold = setInterval(() => {}, 1000)
      console.log('port ' + server.address().port)
      process.on('exit', () => console.log('exit ' + server.connections))
    `)
    const port = await new Promise<number>((res, rej) => {
      const t = setTimeout(() => rej(new Error(child.output())), 15_000)
      child.proc.stdout!.on('data', () => { const m = /port (\d+)/.exec(child.output()); if (m) { clearTimeout(t); res(Number(m[1])) } })
    })
    // the connection must keep the child alive through the whole command
    const ssh = await connect({ host: '127.0.0.1', port, username: 'u', hostKey: 'insecure-accept-any' })
    const out = await ssh.exec('anything')
    expect(out.stdout.toString()).toBe('a\nb\n')
    expect(await child.exit(300)).toBe('running')
    await ssh.close()
    // the last connection gone, the unref()'d server lets it exit
    expect(await child.exit(10_000)).toBe(0)
    expect(child.output()).toMatch(/exit 0/)
  })
})
