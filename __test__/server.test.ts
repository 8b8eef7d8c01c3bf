// The embedded server's API, driven by the ferrossh client: options, authentication
// callbacks, sessions (exec, shell, subsystems), forwarding hooks, host keys, lifecycle.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

import {
  AuthError, ChannelError, ConfigError, ConnectError, connect, createServer, ForwardError, type ServerSession, type SshClient,
} from '../dist/cjs/index.js'
import { keygen } from './fixtures/sshd.mjs'
import { keyBlob, startServer, type TestServer } from './fixtures/server'
import { rejection, tcpEndReader, until, withTimeout } from './fixtures/helpers'

const LIBRARY = resolve(__dirname, '../dist/cjs/index.js')

function client(t: TestServer, extra: Record<string, unknown> = {}): Promise<SshClient> {
  return connect({ host: t.host, port: t.port, username: 'tester', privateKeyPath: t.clientKey.path, hostKey: 'insecure-accept-any', ...extra })
}

describe('createServer options', () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['no auth at all', { auth: {} }, 'auth'],
    ['auth missing', {}, 'auth'],
    ['a non-function password check', { auth: { password: 'secret' } }, 'auth.password'],
    ['an unknown option', { auth: { none: true }, hostkeys: [] }, 'hostkeys'],
    ['a non-function exec', { auth: { none: true }, exec: 'ls' }, 'exec'],
    ['a bad limit', { auth: { none: true }, limits: { maxAuthTries: 0 } }, 'limits.maxAuthTries'],
    ['an unknown limit', { auth: { none: true }, limits: { maxFoo: 1 } }, 'limits.maxFoo'],
    ['a bad forwarding hook', { auth: { none: true }, forwarding: { direct: 'yes' } }, 'forwarding.direct'],
    ['an sftp root that is not a directory', { auth: { none: true }, sftp: { root: '/nonexistent/ferrossh' } }, 'sftp.root'],
    ['a host key that is no key', { auth: { none: true }, hostKeys: '-----BEGIN OPENSSH PRIVATE KEY-----\nnope\n-----END OPENSSH PRIVATE KEY-----\n' }, 'hostKeys[0]'],
    ['an unknown cipher', { auth: { none: true }, algorithms: { cipher: 'rot13' } }, 'algorithms.cipher'],
  ]
  it.each(cases)('%s is a ConfigError', (_name, options, option) => {
    let err: unknown
    try {
      createServer(options as never)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).option).toBe(option)
  })
})

describe('listening', () => {
  it('picks a port, reports its address and host keys, and closes', async () => {
    const s = createServer({ auth: { none: true } })
    expect(s.address()).toBeNull()
    await s.listen(0)
    const a = s.address()!
    expect(a).toMatchObject({ address: '127.0.0.1', family: 'IPv4' })
    expect(a.port).toBeGreaterThan(0)
    expect(s.hostKeys).toEqual([expect.objectContaining({ algorithm: 'ssh-ed25519', fingerprint: expect.stringMatching(/^SHA256:/) })])
    let closed = false
    s.on('close', () => { closed = true })
    // a bad timeout rejects (close() returns a promise) and leaves the server listening
    const bad = s.close({ timeout: 'soon' as never })
    expect(await rejection(bad)).toMatchObject({ option: 'timeout' })
    expect(s.address()?.port).toBe(a.port)
    expect(closed).toBe(false)
    await s.close()
    expect(closed).toBe(true)
    expect(await rejection(s.listen(0))).toBeInstanceOf(ConfigError)
  })

  it('a port in use is a ConnectError with EADDRINUSE', async () => {
    const a = await createServer({ auth: { none: true } }).listen(0)
    const b = createServer({ auth: { none: true } })
    const e = await rejection(b.listen(a.address()!.port))
    expect(e).toBeInstanceOf(ConnectError)
    expect(e.errno).toBe('EADDRINUSE')
    await a.close()
  })

  it('a generated host key is saved at hostKeyPath and reused', async () => {
    const t = await startServer()
    const path = join(t.dir, 'host_ed25519')
    const a = createServer({ auth: { none: true }, hostKeyPath: path })
    const b = createServer({ auth: { none: true }, hostKeyPath: path })
    expect(a.hostKeys[0].fingerprint).toBe(b.hostKeys[0].fingerprint)
    const again = keygen(join(t.dir, 'given'), 'ecdsa')
    const c = createServer({ auth: { none: true }, hostKeys: [join(t.dir, 'given'), path] })
    expect(c.hostKeys.map((k) => k.fingerprint)).toEqual([again.fingerprint, a.hostKeys[0].fingerprint])
    await t.stop()
  })

  it('processes starting at once on a new hostKeyPath all get the one key', async () => {
    const t = await startServer()
    for (let round = 0; round < 3; round++) {
      const path = join(t.dir, `shared_${round}`)
      const at = Date.now() + 1000
      // every worker spins until the same moment, then creates its server
      const script = `const { createServer } = require(${JSON.stringify(LIBRARY)}); while (Date.now() < ${at}) {}
        try { console.log('ok ' + createServer({ auth: { none: true }, hostKeyPath: ${JSON.stringify(path)} }).hostKeys[0].fingerprint) }
        catch (e) { console.log('failed ' + e.message) }`
      const outs = await Promise.all([...Array(6)].map(() => new Promise<string>((res) => {
        const p = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
        let out = ''
        p.stdout.on('data', (d) => (out += d))
        p.on('exit', () => res(out.trim()))
      })))
      const fingerprint = createServer({ auth: { none: true }, hostKeyPath: path }).hostKeys[0].fingerprint
      expect(outs).toEqual(Array(6).fill(`ok ${fingerprint}`))
      expect(readdirSync(t.dir).filter((n) => n.includes(`shared_${round}`)).sort()).toEqual([`shared_${round}`, `shared_${round}.pub`])
    }
    await t.stop()
  }, 30_000)
})

describe('authentication', () => {
  const kbdAnswers: (string | undefined)[] = []
  let t: TestServer
  const seen: Record<string, unknown>[] = []
  beforeAll(async () => {
    t = await startServer({
      banner: 'Authorized use only\n',
      auth: {
        password: async (ctx, pw) => {
          seen.push({ ...ctx, pw })
          if (pw === 'throw') throw new Error('boom')
          if (pw === 'truthy') return 'yes' as never
          await sleep(5)
          return pw === 'secret'
        },
        publicKey: (ctx, key) => {
          seen.push({ ...ctx, key })
          return key.publicKey === keyBlob(t.clientKey.publicKey)
        },
        keyboardInteractive: async (_ctx, prompt) => {
          const [pw] = await prompt([{ prompt: 'Password: ' }], { name: 'Login', instructions: 'two steps' })
          kbdAnswers.push(pw)
          const [code] = await prompt(['Code: '])
          return pw === 'secret' && code === '42'
        },
      },
      exec: async (s) => { s.stdout.write(s.user) },
    })
  })
  afterAll(() => t.stop())

  it('accepts the right password and shows the banner', async () => {
    const ssh = await connect({ host: t.host, port: t.port, username: 'pw-user', password: 'secret', hostKey: 'insecure-accept-any' })
    expect(ssh.banner).toBe('Authorized use only\n')
    expect((await ssh.exec('x')).stdout.toString()).toBe('pw-user')
    expect(seen.at(-1)).toMatchObject({ user: 'pw-user', method: 'password', remoteAddress: '127.0.0.1', pw: 'secret' })
    await ssh.close()
  })

  it.each(['wrong', 'throw', 'truthy'])('refuses a password callback answering %s', async (pw) => {
    const e = await rejection(connect({ host: t.host, port: t.port, username: 'u', password: pw, hostKey: 'insecure-accept-any' }))
    expect(e).toBeInstanceOf(AuthError)
  })

  it('checks a public key by fingerprint', async () => {
    const ssh = await client(t)
    const offered = seen.filter((s) => s.method === 'publickey').at(-1) as { key: { fingerprint: string; algorithm: string } }
    expect(offered.key).toMatchObject({ fingerprint: t.clientKey.fingerprint, algorithm: 'ssh-ed25519' })
    await ssh.close()
    const other = keygen(join(t.dir, 'other'))
    expect(await rejection(connect({ host: t.host, port: t.port, username: 'u', privateKeyPath: other.path, hostKey: 'insecure-accept-any' }))).toBeInstanceOf(AuthError)
  })

  it('runs keyboard-interactive rounds', async () => {
    const rounds: unknown[] = []
    const answers = [['secret'], ['42']]
    const ssh = await connect({
      host: t.host, port: t.port, username: 'kbd', hostKey: 'insecure-accept-any',
      keyboardInteractive: (prompts, info) => { rounds.push({ prompts, info }); return answers[rounds.length - 1] ?? [] },
    })
    expect(rounds).toEqual([
      { prompts: [{ prompt: 'Password: ', echo: false }], info: { name: 'Login', instructions: 'two steps' } },
      { prompts: [{ prompt: 'Code: ', echo: false }], info: { name: '', instructions: '' } },
    ])
    await ssh.close()
    const wrong = await rejection(connect({ host: t.host, port: t.port, username: 'kbd', hostKey: 'insecure-accept-any', keyboardInteractive: () => ['nope'] }))
    expect(wrong).toBeInstanceOf(AuthError)
    // an answer that is no string cancels the round: "null" never goes out as a credential
    kbdAnswers.length = 0
    for (const bad of [[null], [undefined], [42]]) {
      const e = await rejection(connect({ host: t.host, port: t.port, username: 'kbd', hostKey: 'insecure-accept-any', keyboardInteractive: () => bad as never }))
      expect(e).toBeInstanceOf(AuthError)
    }
    expect(kbdAnswers.filter((a) => a === 'null' || a === 'undefined' || a === '42')).toEqual([])
  })

  it('lets everyone in with none: true', async () => {
    const s = await createServer({ auth: { none: true }, exec: (x) => { void x.exit(0) } }).listen(0)
    const ssh = await connect({ host: '127.0.0.1', port: s.address()!.port, username: 'anyone', password: 'x', hostKey: 'insecure-accept-any' })
    expect((await ssh.exec('true')).code).toBe(0)
    await ssh.close()
    await s.close()
  })
})

describe('sessions', () => {
  let t: TestServer
  let ssh: SshClient
  const sessions: ServerSession[] = []
  beforeAll(async () => {
    t = await startServer({
      exec: (s) => {
        sessions.push(s)
        const [cmd, arg] = s.command!.split(' ')
        switch (cmd) {
          case 'echo-env': return (async () => { s.stdout.write(JSON.stringify(s.env)) })()
          case 'cat': s.stdin.pipe(s.stdout); s.stdin.on('end', () => void s.exit(0)); return undefined
          case 'sha256': return (async () => {
            const h = createHash('sha256')
            for await (const c of s.stdin) h.update(c as Buffer)
            s.stdout.write(h.digest('hex'))
          })()
          case 'exit': return (async () => Number(arg))()
          case 'fail': return Promise.reject(new Error('handler failed'))
          case 'kill': void s.kill(arg); return undefined
          case 'pty-modes': s.stdout.write(JSON.stringify({ names: s.pty?.modeNames, pairs: s.pty?.modes })); void s.exit(0); return undefined
          case 'bad-args': return (async () => {
            const tries: Array<[string, () => Promise<void>]> = [
              ['exit x', () => s.exit('x' as never)], ['exit -1', () => s.exit(-1)], ['exit 1.5', () => s.exit(1.5)],
              ['kill NOPE', () => s.kill('NOPE')], ['kill 9', () => s.kill(9 as never)], ['kill message', () => s.kill('TERM', 5 as never)],
            ]
            for (const [what, f] of tries) {
              const e = await f().then(() => null, (x: unknown) => x)
              s.stdout.write(`${what}: ${e instanceof ConfigError ? (e as ConfigError).option : String(e)}\n`)
            }
            return 4
          })()
          case 'stderr': s.stderr.write('to stderr'); s.stdout.write('to stdout'); void s.exit(0); return undefined
          case 'refuse': return false
          case 'throw': throw new Error('refused by throwing')
          case 'big': return (async () => { s.stdout.write(Buffer.alloc(8 * 1024 * 1024, 7)) })()
          case 'wait': return new Promise((r) => setTimeout(r, Number(arg)))
          case 'hang': return undefined
          case 'close-early': s.stdout.write('partial', () => void s.close()); return undefined
          default: return (async () => 127)()
        }
      },
      shell: (s) => {
        sessions.push(s)
        s.stdout.write(`pty ${s.pty?.term} ${s.pty?.cols}x${s.pty?.rows}\n`)
        s.on('resize', (r: { cols: number; rows: number }) => s.stdout.write(`resized ${r.cols}x${r.rows}\n`))
        s.on('signal', (name: string) => s.stdout.write(`signal ${name}\n`))
        s.stdin.on('data', (d: Buffer) => { if (d.toString().includes('bye')) void s.exit(5); else s.stdout.write(d) })
      },
      subsystem: {
        upper: (s) => { s.stdin.on('data', (d: Buffer) => s.stdout.write(d.toString().toUpperCase())); s.stdin.on('end', () => void s.exit(0)) },
      },
      acceptEnv: ['LC_*', 'FERROSSH_*'],
    })
    ssh = await client(t)
  })
  afterAll(async () => {
    await ssh?.close()
    await t?.stop()
  })

  it('runs a command with the exit status its promise resolves to', async () => {
    expect((await ssh.exec('exit 3')).code).toBe(3)
    expect((await ssh.exec('exit 0')).code).toBe(0)
    expect((await ssh.exec('unknown')).code).toBe(127)
    expect((await ssh.exec('fail')).code).toBe(1)
  })

  it("a handler's bad exit() and kill() arguments are ConfigErrors, and the session still ends as the handler says", async () => {
    const r = await ssh.exec('bad-args')
    expect(r.stdout.toString().split('\n').filter(Boolean)).toEqual([
      'exit x: code', 'exit -1: code', 'exit 1.5: code', 'kill NOPE: signal', 'kill 9: signal', 'kill message: message',
    ])
    expect(r.code).toBe(4)
  })

  it("gives a handler the client's terminal modes as pairs and by name", async () => {
    const r = await ssh.exec('pty-modes', { pty: { modes: { ECHO: 0, VINTR: 7, TTY_OP_OSPEED: 9600, 51: 1 } } })
    const { names, pairs } = JSON.parse(r.stdout.toString())
    expect(names).toEqual({ ECHO: 0, VINTR: 7, TTY_OP_OSPEED: 9600, ICANON: 1 })
    expect([...pairs].sort((a: number[], b: number[]) => a[0] - b[0])).toEqual([[1, 7], [51, 1], [53, 0], [129, 9600]])
    expect(JSON.parse((await ssh.exec('pty-modes')).stdout.toString())).toEqual({})
  })

  it('passes the environment acceptEnv lets through', async () => {
    const r = await ssh.exec('echo-env', { env: { LC_X: 'a b', FERROSSH_Y: '1', PATH_NOPE: 'x' } })
    expect(JSON.parse(r.stdout.toString())).toEqual({ LC_X: 'a b', FERROSSH_Y: '1' })
  })

  it('matches acceptEnv globs in linear time: a long name against several stars holds up no one', async () => {
    const s = await startServer({ exec: async (x) => { x.stdout.write('ok'); return 0 }, acceptEnv: ['X*_*_*Y'] })
    const opts = { host: s.host, port: s.port, username: 'u', privateKeyPath: s.clientKey.path, hostKey: 'insecure-accept-any' as const }
    const [victim, attacker] = await Promise.all([connect(opts), connect(opts)])
    try {
      const a = attacker.exec('x', { env: { ['X' + '_'.repeat(800)]: '1' } })
      await sleep(100)
      const t0 = Date.now()
      expect((await victim.exec('x')).stdout.toString()).toBe('ok')
      expect(Date.now() - t0).toBeLessThan(1000)
      expect((await a).code).toBe(0)
    } finally {
      await Promise.all([victim.close(), attacker.close()])
      await s.stop()
    }
  })

  it('streams stdin to stdout with end of input', async () => {
    const data = randomBytes(3 * 1024 * 1024)
    const r = await ssh.exec('cat', { stdin: data })
    expect(r.stdout.equals(data)).toBe(true)
    expect(r.code).toBe(0)
    const h = await ssh.exec('sha256', { stdin: data })
    expect(h.stdout.toString()).toBe(createHash('sha256').update(data).digest('hex'))
  })

  it('sends large output intact, stderr apart', async () => {
    const r = await ssh.exec('big')
    expect(r.stdout.length).toBe(8 * 1024 * 1024)
    expect(r.stdout.every((b) => b === 7)).toBe(true)
    const e = await ssh.exec('stderr')
    expect([e.stdout.toString(), e.stderr.toString()]).toEqual(['to stdout', 'to stderr'])
  })

  it('ends a session by a signal', async () => {
    expect(await ssh.exec('kill TERM')).toMatchObject({ code: null, signal: 'TERM' })
    expect((await ssh.exec('kill KILL')).signal).toBe('KILL')
  })

  it('refuses a request when the handler throws or returns false', async () => {
    for (const cmd of ['throw', 'refuse']) {
      const e = await rejection(ssh.exec(cmd))
      expect(e).toBeInstanceOf(ChannelError)
      expect(e.reason).toBe('request-failed')
    }
    expect((await ssh.exec('exit 0')).code).toBe(0)
  })

  it('gives a shell its pty and reports resizes and signals', async () => {
    const sh = await ssh.shell({ pty: { term: 'xterm-256color', cols: 90, rows: 30 } })
    let out = ''
    sh.on('data', (d: Buffer) => { out += d.toString() })
    await until(() => out.includes('pty xterm-256color 90x30'), 5000, 'pty line', () => out)
    await sh.resize(120, 40)
    await until(() => out.includes('resized 120x40'), 5000, 'resize', () => out)
    expect(sessions.at(-1)!.pty).toMatchObject({ cols: 120, rows: 40 })
    // pixel sizes as ssh sends them from the terminal
    await sh.resize(100, 30, 800, 600)
    await until(() => out.includes('resized 100x30'), 5000, 'resize with pixels', () => out)
    expect(sessions.at(-1)!.pty).toMatchObject({ cols: 100, rows: 30, width: 800, height: 600 })
    await expect(sh.resize(100, 30, -1, 0)).rejects.toMatchObject({ option: 'width' })
    await sh.kill('INT')
    await until(() => out.includes('signal INT'), 5000, 'signal', () => out)
    sh.write('hello\n')
    await until(() => out.includes('hello'), 5000, 'echo', () => out)
    sh.write('bye\n')
    expect(await withTimeout(sh.exited, 5000, 'shell exit')).toEqual({ code: 5, signal: null })
  })

  it('serves a subsystem', async () => {
    const sub = await ssh.subsystem('upper')
    let out = ''
    sub.on('data', (d: Buffer) => { out += d.toString() })
    sub.end('make me loud')
    expect(await withTimeout(sub.exited, 5000, 'subsystem exit')).toEqual({ code: 0, signal: null })
    await until(() => out === 'MAKE ME LOUD', 5000, 'subsystem output', () => out)
    expect(await rejection(ssh.subsystem('nope'))).toBeInstanceOf(ChannelError)
  })

  it('tells the session when the client closes it', async () => {
    const p = ssh.spawn('hang')
    await until(() => sessions.at(-1)?.command === 'hang', 5000, 'session started')
    const s = sessions.at(-1)!
    const closed = new Promise<void>((r) => s.once('close', r))
    await p.close()
    await withTimeout(closed, 5000, 'close event')
    expect(s.closed).toBe(true)
    await s.exit(0) // after the end: nothing happens, nothing throws
  })

  it('a client that closes the channel before its EOF: stdin errors after what arrived, never a clean end', async () => {
    const before = sessions.length
    const p = ssh.spawn('hang')
    await until(() => sessions.length > before && sessions.at(-1)?.command === 'hang', 5000, 'session started')
    const s = sessions.at(-1)!
    let got = 0
    const outcome = new Promise<unknown>((resolve) => {
      s.stdin.on('data', (c: Buffer) => { got += c.length })
      s.stdin.once('end', () => resolve('end'))
      s.stdin.once('error', resolve)
    })
    p.stdin.write(Buffer.alloc(1000, 1))
    await until(() => got === 1000, 5000, 'input arrived')
    await p.close()
    const e = await withTimeout(outcome, 5000, 'stdin outcome')
    expect(e).toBeInstanceOf(ChannelError)
    expect(e).toMatchObject({ reason: 'closed' })
    expect(got).toBe(1000)
  })

  it('a client that leaves with output still pending: stdout errors and exit() rejects', async () => {
    const before = sessions.length
    const p = ssh.spawn('hang')
    await until(() => sessions.length > before && sessions.at(-1)?.command === 'hang', 5000, 'session started')
    const s = sessions.at(-1)!
    const stdoutError = new Promise<unknown>((resolve) => s.stdout.once('error', resolve))
    // more than the client's window: the rest waits on the server when the client leaves
    s.stdout.write(Buffer.alloc(8 * 1024 * 1024, 7))
    const exited = s.exit(0).then(() => 'resolved', (e: unknown) => e)
    let got = 0
    p.stdout.on('data', (c: Buffer) => { got += c.length; if (got >= 1024 * 1024) p.stdout.pause() })
    await until(() => got >= 1024 * 1024, 5000, 'output arriving')
    await p.close()
    expect(await withTimeout(stdoutError, 5000, 'stdout error')).toMatchObject({ code: 'ERR_SSH_CHANNEL', reason: 'closed' })
    expect(await withTimeout(exited, 5000, 'exit()')).toMatchObject({ code: 'ERR_SSH_CHANNEL', reason: 'closed' })
  })

  it('a session the server closes with neither EOF nor an exit status rejects on the client: its output was cut short', async () => {
    const e = await rejection(ssh.exec('close-early'))
    expect(e).toBeInstanceOf(ChannelError)
    expect(e).toMatchObject({ reason: 'closed' })
    expect(e.message).toMatch(/before the end of its output/)
  })
})

describe('forwarding hooks', () => {
  let t: TestServer
  let echo: net.Server
  let echoPort: number
  const asked: unknown[] = []
  const binds: string[] = []
  // targets the tests below add
  const allowed = new Set<number>()
  beforeAll(async () => {
    echo = net.createServer((c) => { c.on('error', () => {}); c.pipe(c) })
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    echoPort = (echo.address() as net.AddressInfo).port
    allowed.add(echoPort)
    t = await startServer({
      forwarding: {
        direct: (ctx, target) => { asked.push({ ctx, target }); return allowed.has(target.port) },
        remote: (_ctx, bind) => { binds.push(bind.address); return bind.address === 'localhost' || bind.address === '::1' },
      },
    })
  })
  afterAll(async () => {
    await t?.stop()
    echo?.close()
  })

  async function target(onConnection: (c: net.Socket) => void): Promise<{ port: number; server: net.Server }> {
    const server = net.createServer((c) => { c.on('error', () => {}); onConnection(c) })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    allowed.add(port)
    return { port, server }
  }

  it('a target that resets after sending delivers what it sent, then ends the channel', async () => {
    const data = randomBytes(64 * 1024)
    // a reset throws away what is still unsent: it comes once the bytes had time to go
    const { port, server } = await target((c) => { c.write(data, () => setTimeout(() => c.resetAndDestroy(), 300)) })
    const ssh = await client(t)
    const tcp = await ssh.openTcp('127.0.0.1', port)
    const parts: Buffer[] = []
    tcp.on('data', (d: Buffer) => parts.push(d))
    tcp.on('error', () => {})
    // the channel ends although the client never sends anything (it used to wait forever)
    await withTimeout(new Promise<void>((r) => tcp.once('end', () => r())), 5000, 'the channel ends after the reset')
    expect(Buffer.concat(parts).equals(data)).toBe(true)
    await ssh.close()
    server.close()
  })

  it("a forwarded socket whose peer stays silent is closed when the channel or the connection ends, as sshd closes it", async () => {
    // the target never ends its side and never sends: only the server can let the socket go
    const server = net.createServer({ allowHalfOpen: true }, (c) => c.on('error', () => {}))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    allowed.add(port)
    // whether this process (the embedded server) still holds a socket connected to the target
    const held = (): boolean => {
      const inodes = readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length > 9 && parseInt(f[2].split(':')[1], 16) === port).map((f) => `socket:[${f[9]}]`)
      const mine = new Set(readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`) } catch { return '' } }))
      return inodes.some((i) => mine.has(i))
    }
    const ssh = await client(t)
    const tcp = await ssh.openTcp('127.0.0.1', port)
    await until(held, 5000, 'the server connected to the target')
    tcp.destroy()
    await until(() => !held(), 5000, 'the socket let go after the channel closed')
    const tcp2 = await ssh.openTcp('127.0.0.1', port)
    tcp2.on('error', () => {})
    await until(held, 5000, 'the server connected to the target again')
    await ssh.close()
    await until(() => !held(), 5000, 'the socket let go after the connection closed')
    server.close()
  })

  it('a connection cut mid-upload resets the target socket: it never takes the cut for a clean end', async () => {
    // the target only reads, in a process outside Node, which tells a reset from a clean end
    const reader = tcpEndReader('listen')
    const port = await withTimeout(reader.port, 10_000, 'the target listening')
    allowed.add(port)
    // the client reaches the server through a relay this test can cut
    const held: net.Socket[] = []
    const relay = net.createServer((a) => {
      const b = net.connect(t.port, t.host)
      held.push(a, b)
      a.on('error', () => {}); b.on('error', () => {})
      a.pipe(b); b.pipe(a)
    })
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r))
    const ssh = await client(t, { port: (relay.address() as net.AddressInfo).port })
    ssh.on('error', () => {})
    const tcp = await ssh.openTcp('127.0.0.1', port)
    tcp.on('error', () => {})
    const chunk = randomBytes(64 * 1024)
    const pump = (): void => { while (tcp.writable && tcp.write(chunk)); }
    tcp.on('drain', pump)
    pump()
    await withTimeout(reader.ready, 10_000, 'bytes through the channel')
    for (const s of held) s.destroy()
    expect(await withTimeout(reader.ended, 10_000, 'the target socket ends')).toBe('reset')
    await ssh.close()
    relay.close()
  })

  it('a tcpip-forward for localhost listens on both loopbacks, and a bracketed IPv6 bind is sent bare', async () => {
    const ssh = await client(t)
    const fwd = await ssh.forwardRemote({ remoteHost: 'localhost', remotePort: 0, localHost: '127.0.0.1', localPort: echoPort })
    for (const host of ['127.0.0.1', '::1']) {
      const sock = net.connect(fwd.remotePort!, host)
      let got = ''
      sock.on('data', (d: Buffer) => { got += d.toString() })
      sock.write(`via ${host}`)
      await until(() => got === `via ${host}`, 5000, `echo through ${host}`, () => got)
      sock.destroy()
    }
    const v6 = await ssh.forwardRemote({ remoteHost: '[::1]', remotePort: 0, localHost: '127.0.0.1', localPort: echoPort })
    expect(binds.at(-1)).toBe('::1')
    const sock = net.connect(v6.remotePort!, '::1')
    let got = ''
    sock.on('data', (d: Buffer) => { got += d.toString() })
    sock.write('v6')
    await until(() => got === 'v6', 5000, 'echo through [::1]', () => got)
    sock.destroy()
    await ssh.close()
  })

  it('opens an allowed direct-tcpip target and refuses others', async () => {
    const ssh = await client(t)
    const tcp = await ssh.openTcp('127.0.0.1', echoPort)
    let got = ''
    tcp.on('data', (d: Buffer) => { got += d.toString() })
    tcp.write('ping')
    await until(() => got === 'ping', 5000, 'echo through the server', () => got)
    tcp.end()
    expect(asked.at(-1)).toMatchObject({ ctx: { user: 'tester' }, target: { host: '127.0.0.1', port: echoPort } })
    const e = await rejection(ssh.openTcp('127.0.0.1', 1))
    expect(e).toBeInstanceOf(ChannelError)
    expect(e.reason).toBe('administratively-prohibited')
    await ssh.close()
  })

  it('listens for an allowed tcpip-forward and refuses others', async () => {
    const ssh = await client(t)
    const fwd = await ssh.forwardRemote({ remoteHost: 'localhost', remotePort: 0, localHost: '127.0.0.1', localPort: echoPort })
    expect(fwd.remotePort).toBeGreaterThan(0)
    const sock = net.connect(fwd.remotePort!, '127.0.0.1')
    let got = ''
    sock.on('data', (d: Buffer) => { got += d.toString() })
    sock.write('through -R')
    await until(() => got === 'through -R', 5000, 'echo through the remote forward', () => got)
    sock.destroy()
    expect(await rejection(ssh.forwardRemote({ remoteHost: '0.0.0.0', remotePort: 0, localPort: echoPort }))).toBeInstanceOf(ForwardError)
    await ssh.close()
  })

  it('refuses forwarding by default', async () => {
    const plain = await startServer()
    const ssh = await client(plain)
    expect(await rejection(ssh.openTcp('127.0.0.1', echoPort))).toBeInstanceOf(ChannelError)
    await ssh.close()
    await plain.stop()
  })
})

describe('lifecycle', () => {
  it('lets sessions finish within the close timeout', async () => {
    const t = await startServer({ exec: (s) => new Promise((r) => setTimeout(() => r(s.command === 'slow' ? 4 : 0), 400)) })
    const ssh = await client(t)
    const running = ssh.exec('slow')
    await sleep(100)
    const started = Date.now()
    await t.server.close({ timeout: 5000 })
    expect((await running).code).toBe(4)
    expect(Date.now() - started).toBeLessThan(3000)
    expect(await withTimeout(ssh.closed, 5000, 'client sees the end')).toBeTruthy()
    await t.stop()
  })

  it('closes sessions still running at the timeout', async () => {
    const t = await startServer({ exec: () => undefined })
    const ssh = await client(t)
    const p = ssh.spawn('forever')
    await until(() => t.server.connections === 1, 5000, 'connected')
    const started = Date.now()
    await t.server.close({ timeout: 300 })
    expect(Date.now() - started).toBeLessThan(5000)
    expect(t.server.connections).toBe(0)
    await withTimeout(ssh.closed, 5000, 'client disconnected')
    await p.exited.catch(() => {})
    await t.stop()
  })

  it('keeps the process alive while listening, not after close() or unref()', async () => {
    const dir = (await startServer()).dir
    const script = (body: string) => {
      const f = join(dir, `${Math.random().toString(36).slice(2)}.cjs`)
      writeFileSync(f, `const { createServer } = require(${JSON.stringify(LIBRARY)});\n(async () => {\n${body}\n})()\n`)
      return f
    }
    const exitsWithin = (file: string, ms: number) => new Promise<boolean>((resolveExit) => {
      const p = spawn(process.execPath, [file], { stdio: 'ignore' })
      const timer = setTimeout(() => { p.kill('SIGKILL'); resolveExit(false) }, ms)
      p.on('exit', () => { clearTimeout(timer); resolveExit(true) })
    })
    const listen = "const s = await createServer({ auth: { none: true }, exec: (x) => x.exit(0) }).listen(0);"
    expect(await exitsWithin(script(listen), 1500)).toBe(false)
    expect(await exitsWithin(script(`${listen} s.unref();`), 5000)).toBe(true)
    expect(await exitsWithin(script(`${listen} await s.close();`), 5000)).toBe(true)
  })
})
