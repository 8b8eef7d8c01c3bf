// The OpenSSH client tools against the embedded server: ssh exec (stdin, stderr, exit
// status, env), an interactive shell with a PTY (under tmux, resized), scp both ways, and
// -L / -R forwarding.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { ConfigError, createServer, parseKey, type ServerSession } from '../dist/cjs/index.js'
import { freeLoopbackPort, rsaKeyFromPrimes, until, withTimeout } from './fixtures/helpers'
import { keyBlob, run, scp, ssh, startServer, type TestServer } from './fixtures/server'
import { keygen } from './fixtures/sshd.mjs'

let t: TestServer
let root: string
let echo: net.Server
let echoPort: number
const sessions: ServerSession[] = []

beforeAll(async () => {
  echo = net.createServer((c) => { c.on('error', () => {}); c.pipe(c) })
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
  echoPort = (echo.address() as net.AddressInfo).port
  t = await startServer({
    exec: (s) => {
      sessions.push(s)
      if (s.command === 'cat') {
        s.stdin.pipe(s.stdout)
        s.stdin.on('end', () => void s.exit(0))
        return undefined
      }
      return (async () => {
        s.stdout.write(`cmd=${s.command} user=${s.user} pty=${s.pty ? s.pty.term : 'none'} lang=${s.env.LANG ?? ''}\n`)
        s.stderr.write('diagnostics\n')
        return s.command === 'fail' ? 42 : 0
      })()
    },
    shell: (s) => {
      sessions.push(s)
      s.stdout.write(`welcome ${s.user}, ${s.pty?.cols}x${s.pty?.rows}\r\n$ `)
      s.on('resize', (r: { cols: number; rows: number }) => s.stdout.write(`\r\n[resized ${r.cols}x${r.rows}]\r\n$ `))
      let line = ''
      s.stdin.on('data', (d: Buffer) => {
        for (const ch of d.toString()) {
          if (ch === '\r' || ch === '\n') {
            s.stdout.write(`\r\nyou said: ${line}\r\n$ `)
            if (line === 'exit') void s.exit(7)
            line = ''
          } else {
            line += ch
            s.stdout.write(ch)
          }
        }
      })
    },
    forwarding: { direct: true, remote: true },
  })
  root = join(t.dir, 'files')
  mkdirSync(root)
})

afterAll(async () => {
  await t?.stop()
  echo?.close()
})

describe('ssh exec', () => {
  it('runs a command with stdout, stderr and the exit status', async () => {
    const r = await ssh(t, 'fail', { flags: ['-o', 'SendEnv=LANG'], env: { ...process.env, LANG: 'C.UTF-8' } })
    expect(r.status).toBe(42)
    expect(r.stdout).toBe('cmd=fail user=tester pty=none lang=C.UTF-8\n')
    expect(r.stderr).toBe('diagnostics\n')
  })

  it('pipes stdin through and ends at EOF', async () => {
    const data = randomBytes(1024 * 1024).toString('base64')
    const r = await ssh(t, 'cat', { input: data })
    expect(r.status).toBe(0)
    expect(r.stdout).toBe(data)
  })

  it('gives a PTY to `ssh -tt`', async () => {
    const r = await ssh(t, 'tty', { flags: ['-tt'], env: { ...process.env, TERM: 'vt100' } })
    expect(r.stdout).toContain('pty=vt100')
  })

  it('asks keyboard-interactive rounds OpenSSH answers (through askpass)', async () => {
    const kbd = await startServer({
      auth: {
        keyboardInteractive: async (_ctx, prompt) => {
          const [pw] = await prompt([{ prompt: 'Password: ' }], { instructions: 'Two steps.' })
          const [code] = await prompt([{ prompt: 'Verification code: ' }])
          return pw === 'secret' && code === '42'
        },
      },
      exec: async (s) => { s.stdout.write(`in as ${s.user}`) },
    })
    try {
      const askpass = join(kbd.dir, 'askpass.sh')
      writeFileSync(askpass, '#!/bin/sh\ncase "$1" in *Password*) echo secret ;; *code*) echo 42 ;; *) echo "?" ;; esac\n', { mode: 0o755 })
      const opts = kbd.sshOptions.map((o) => (o === 'BatchMode=yes' ? 'BatchMode=no' : o))
      const r = await run('ssh', ['-p', String(kbd.port), ...opts, '-o', 'PreferredAuthentications=keyboard-interactive', `kbd@${kbd.host}`, 'x'], {
        env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
      })
      expect(r.status, r.stderr).toBe(0)
      expect(r.stdout).toBe('in as kbd')
    } finally {
      await kbd.stop()
    }
  })

  it('sends the exit status to a client behind an OpenSSH ControlMaster, every time', async () => {
    // a master answers EOF with CLOSE at once: a status sent after EOF would be lost
    const mux = await startServer({
      exec: (s) => {
        s.stdout.write(`${s.command}\n`)
        if (s.command === 'sync') return 7 // a number returned at once is the status too
        if (s.command === 'ended') {
          s.stdout.end()
          s.stderr.end()
          return (async () => 8)()
        }
        if (s.command === 'kill') return void s.kill('TERM')
        return (async () => 9)()
      },
    })
    const ctl = join(mux.dir, 'ctl')
    const base = ['-p', String(mux.port), ...mux.sshOptions, '-S', ctl]
    const master = spawn('ssh', [...base, '-M', '-N', `tester@${mux.host}`], { stdio: 'ignore' })
    try {
      await until(async () => (await run('ssh', [...base, '-O', 'check', `tester@${mux.host}`])).status === 0, 10_000, 'master up')
      const want: Record<string, number> = { sync: 7, ended: 8, async: 9, kill: 255 }
      for (let i = 0; i < 12; i++) {
        for (const [cmd, code] of Object.entries(want)) {
          const r = await run('ssh', [...base, `tester@${mux.host}`, cmd])
          expect({ cmd, i, status: r.status, stdout: r.stdout }).toEqual({ cmd, i, status: code, stdout: `${cmd}\n` })
        }
      }
    } finally {
      master.kill()
      await mux.stop()
    }
  })

  it('counts refused keys towards maxAuthTries, and bounds a keyboard-interactive verdict by callbackTimeout', async () => {
    let offers = 0
    const strict = await startServer({
      auth: {
        publicKey: () => { offers++; return false },
        keyboardInteractive: async (_ctx, prompt) => {
          await prompt([{ prompt: 'Code: ' }])
          return new Promise<boolean>(() => {}) // never decides
        },
      },
      limits: { maxAuthTries: 3, callbackTimeout: 1500, authTimeout: 30_000 },
      exec: async (s) => { s.stdout.write('in') },
    })
    try {
      const keys: string[] = []
      for (let i = 0; i < 6; i++) {
        const k = join(strict.dir, `k${i}`)
        await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', k])
        keys.push('-i', k)
      }
      const opts = strict.sshOptions.filter((o, i, a) => o !== '-i' && a[i - 1] !== '-i')
      const r = await run('ssh', ['-p', String(strict.port), ...opts, ...keys, '-o', 'PreferredAuthentications=publickey', `u@${strict.host}`, 'x'])
      expect(r.status).toBe(255)
      expect(offers).toBe(3)
      expect(r.stderr).toContain('Too many authentication failures')
      const askpass = join(strict.dir, 'askpass.sh')
      writeFileSync(askpass, '#!/bin/sh\necho 123\n', { mode: 0o755 })
      const started = Date.now()
      const k = await run('ssh', ['-p', String(strict.port), ...opts.map((o) => (o === 'BatchMode=yes' ? 'BatchMode=no' : o)), '-o', 'PreferredAuthentications=keyboard-interactive', '-o', 'NumberOfPasswordPrompts=1', `u@${strict.host}`, 'x'], {
        env: { ...process.env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' },
      })
      expect(k.status).toBe(255)
      expect(k.stderr).toMatch(/Permission denied/)
      expect(Date.now() - started).toBeLessThan(10_000)
    } finally {
      await strict.stop()
    }
  })

  it('refuses a key it does not know', async () => {
    const other = join(t.dir, 'stranger')
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const r = await run('ssh', ['-p', String(t.port), ...t.sshOptions.map((o) => (o === t.clientKey.path ? other : o)), `tester@${t.host}`, 'true'])
    expect(r.status).toBe(255)
    expect(r.stderr).toMatch(/Permission denied/)
  })
})

describe('interactive shell', () => {
  it('runs under tmux with a PTY that follows window resizes', async () => {
    const sock = `ferrossh-${process.pid}-${Date.now()}`
    const tmux = (...args: string[]) => run('tmux', ['-L', sock, '-f', '/dev/null', ...args], { env: { ...process.env, TERM: 'xterm-256color' } })
    const sshCmd = ['ssh', '-p', String(t.port), ...t.sshOptions, `tester@${t.host}`].map((a) => `'${a}'`).join(' ')
    const before = sessions.length
    try {
      const started = await tmux('new-session', '-d', '-s', 'main', '-x', '100', '-y', '30', sshCmd)
      expect(started.status, started.stderr).toBe(0)
      await until(() => sessions.length > before && sessions.at(-1)!.kind === 'shell', 10_000, 'shell session')
      const s = sessions.at(-1)!
      expect(s.pty).toMatchObject({ cols: 100, rows: 30 })
      expect(s.pty!.term).toMatch(/^(tmux|screen)/)
      // ssh sends its terminal's modes; tmux's pane has the default ^C for intr, and the names
      // line up with the pairs
      expect(s.pty!.modeNames).toMatchObject({ VINTR: 3 })
      expect(s.pty!.modes).toContainEqual([1, 3])
      expect(Object.keys(s.pty!.modeNames).length).toBeGreaterThan(10)
      const pane = async () => (await tmux('capture-pane', '-p', '-t', 'main')).stdout
      await until(async () => (await pane()).includes('welcome tester, 100x30'), 10_000, 'welcome line')
      const resized = new Promise<{ cols: number; rows: number }>((r) => s.once('resize', r))
      await tmux('resize-window', '-t', 'main', '-x', '120', '-y', '40')
      expect(await withTimeout(resized, 10_000, 'resize event')).toMatchObject({ cols: 120, rows: 40 })
      await tmux('send-keys', '-t', 'main', 'hello world', 'Enter')
      await until(async () => (await pane()).includes('you said: hello world'), 10_000, 'echoed line')
      const closed = new Promise<void>((r) => s.once('close', r))
      await tmux('send-keys', '-t', 'main', 'exit', 'Enter')
      await withTimeout(closed, 10_000, 'shell closed')
    } finally {
      await tmux('kill-server')
    }
  })

  it('runs under script(1) with the terminal size it was given', async () => {
    const before = sessions.length
    const cmd = ['stty', 'cols', '77', 'rows', '21;', 'exec', 'ssh', '-tt', '-p', String(t.port), ...t.sshOptions, `tester@${t.host}`].join(' ')
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, TERM: 'screen' } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      await until(() => out.includes('$ '), 10_000, 'prompt', () => out)
      expect(sessions.at(-1)).not.toBe(sessions[before - 1])
      expect(sessions.at(-1)!.pty).toMatchObject({ term: 'screen', cols: 77, rows: 21 })
      child.stdin.write('exit\r')
      expect(await withTimeout(exited, 10_000, 'script exit')).toBe(7)
    } finally {
      child.kill('SIGKILL')
    }
  })
})

describe('scp', () => {
  it('uploads and downloads files and directories', async () => {
    const local = join(t.dir, 'up.bin')
    const data = randomBytes(2 * 1024 * 1024 + 123)
    writeFileSync(local, data)
    const sftpServer = await startServer({ sftp: { root } })
    try {
      const up = await scp(sftpServer, local, 'remote:up.bin')
      expect(up.status, up.stderr + up.stdout).toBe(0)
      expect(readFileSync(join(root, 'up.bin')).equals(data)).toBe(true)
      const back = join(t.dir, 'back.bin')
      const down = await scp(sftpServer, 'remote:/up.bin', back)
      expect(down.status, down.stderr).toBe(0)
      expect(readFileSync(back).equals(data)).toBe(true)
      const tree = join(t.dir, 'tree')
      mkdirSync(join(tree, 'sub'), { recursive: true })
      writeFileSync(join(tree, 'sub', 'f.txt'), 'deep')
      const r = await scp(sftpServer, tree, 'remote:/', ['-r'])
      expect(r.status, r.stderr).toBe(0)
      expect(readFileSync(join(root, 'tree', 'sub', 'f.txt'), 'utf8')).toBe('deep')
      const outside = await scp(sftpServer, 'remote:../../etc/passwd', join(t.dir, 'nope'))
      expect(outside.status).not.toBe(0)
    } finally {
      await sftpServer.stop()
    }
  })
})

describe('forwarding', () => {
  const background: ChildProcess[] = []
  afterAll(() => { for (const p of background) p.kill('SIGKILL') })

  function echoThrough(port: number, text: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1')
      let got = ''
      c.on('data', (d: Buffer) => {
        got += d.toString()
        if (got.length >= text.length) { c.destroy(); resolve(got) }
      })
      c.on('error', reject)
      c.write(text)
    })
  }

  it('ssh -L reaches a target through direct-tcpip', async () => {
    const lport = await freeLoopbackPort()
    const p = spawn('ssh', ['-p', String(t.port), ...t.sshOptions, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${lport}:127.0.0.1:${echoPort}`, `tester@${t.host}`])
    background.push(p)
    await until(() => new Promise<boolean>((r) => {
      const c = net.connect(lport, '127.0.0.1')
      c.once('connect', () => { c.destroy(); r(true) })
      c.once('error', () => r(false))
    }), 10_000, 'ssh -L listening')
    expect(await echoThrough(lport, 'hello via -L')).toBe('hello via -L')
    const big = 'x'.repeat(512 * 1024)
    expect((await echoThrough(lport, big)).length).toBe(big.length)
  })

  it('ssh -R makes the server listen and carries connections back', async () => {
    const p = spawn('ssh', ['-p', String(t.port), ...t.sshOptions.map((o) => (o === 'LogLevel=ERROR' ? 'LogLevel=INFO' : o)), '-N', '-o', 'ExitOnForwardFailure=yes', '-R', `0:127.0.0.1:${echoPort}`, `tester@${t.host}`])
    background.push(p)
    let err = ''
    p.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    await until(() => /Allocated port \d+/.test(err), 10_000, 'remote port allocated', () => err)
    const port = Number(/Allocated port (\d+)/.exec(err)![1])
    expect(await echoThrough(port, 'hello via -R')).toBe('hello via -R')
  })
})

describe('RSA host keys', () => {
  let keys: string
  beforeAll(() => {
    keys = mkdtempSync(join(tmpdir(), 'ferrossh-rsa-host-'))
  })
  afterAll(() => rmSync(keys, { recursive: true, force: true }))

  it.each([
    ['ssh-keygen -b 3072', () => keygen(join(keys, 'host-3072'), 'rsa', { bits: 3072 })],
    // 17 and 16 64-bit limbs: the CRT coefficient used to abort the process
    ['a 2048-bit key from primes of 1025 and 1023 bits', () => {
      const k = rsaKeyFromPrimes(keys, 'host-1025-1023', 1025, 1023)
      expect(k.bits).toBe(2048)
      return { path: k.pkcs1, publicKey: k.publicKey }
    }],
  ])('%s serves OpenSSH ssh with rsa-sha2-512 and rsa-sha2-256', async (_name, make) => {
    const key = make()
    const host = await startServer({ hostKeys: [key.path], exec: (s) => { s.stdout.write('ok\n'); return 0 } })
    try {
      expect(host.server.hostKeys.map((k) => k.fingerprint)).toEqual([parseKey(key.publicKey).fingerprint])
      const knownHosts = join(host.dir, 'known_hosts')
      writeFileSync(knownHosts, `[${host.host}]:${host.port} ${keyBlob(key.publicKey)}\n`)
      for (const alg of ['rsa-sha2-512', 'rsa-sha2-256']) {
        // ssh takes the first value of an option: these win over the test defaults
        const r = await run('ssh', ['-p', String(host.port), '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
          '-o', `HostKeyAlgorithms=${alg}`, ...host.sshOptions, `tester@${host.host}`, 'x'])
        expect(r.stderr).not.toMatch(/key bits do not match|incorrect signature/)
        expect({ alg, status: r.status, stdout: r.stdout }).toEqual({ alg, status: 0, stdout: 'ok\n' })
      }
    } finally {
      await host.stop()
    }
  })

  it.each([
    ['ssh-keygen -b 3000', 3000, () => keygen(join(keys, 'host-3000'), 'rsa', { bits: 3000 }).path],
    ['ssh-keygen -b 2100', 2100, () => keygen(join(keys, 'host-2100'), 'rsa', { bits: 2100 }).path],
    ['a 2049-bit key from primes of 1025 and 1024 bits', 2049, () => rsaKeyFromPrimes(keys, 'host-1025-1024', 1025, 1024).pkcs1],
  ])('%s is refused with a ConfigError: its signatures would not be the length of its modulus', (_name, bits, make) => {
    const path = make()
    let error: unknown
    try {
      createServer({ hostKeys: [path], auth: { password: () => false } })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as Error).message).toMatch(new RegExp(`^hostKeys\\[0\\] \\(.*\\): a ${bits}-bit RSA host key cannot be served.*ssh-keygen -t rsa -b 3072$`))
  })
})
