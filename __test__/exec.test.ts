import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { inspect } from 'node:util'

import { AbortError, CommandError, connect, ConfigError, type SshClient, TimeoutError } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let ssh: SshClient

beforeAll(async () => {
  sshd = await startSshd()
  ssh = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } })
})
afterAll(async () => {
  await ssh?.close()
  await sshd?.stop()
})

describe('exec', () => {
  it('returns exit codes', async () => {
    for (const code of [0, 1, 3, 255]) {
      expect((await ssh.exec(`exit ${code}`)).code).toBe(code)
    }
  })
  it('reports a signal by name', async () => {
    const r = await ssh.exec('kill -TERM $$')
    expect(r).toMatchObject({ code: null, signal: 'TERM' })
    expect((await ssh.exec('kill -KILL $$')).signal).toBe('KILL')
  })
  it('keeps stderr apart from stdout, as Buffers', async () => {
    const r = await ssh.exec('printf out; printf err >&2')
    expect(Buffer.isBuffer(r.stdout)).toBe(true)
    expect(r.stdout.toString()).toBe('out')
    expect(r.stderr.toString()).toBe('err')
  })
  it('sends stdin as string, Buffer and Readable', async () => {
    expect((await ssh.exec('cat', { stdin: 'hello' })).stdout.toString()).toBe('hello')
    const bin = randomBytes(300_000)
    expect((await ssh.exec('cat', { stdin: bin })).stdout.equals(bin)).toBe(true)
    const fromStream = await ssh.exec('wc -c', { stdin: Readable.from([Buffer.from('abc'), Buffer.from('de')]) })
    expect(fromStream.stdout.toString().trim()).toBe('5')
  })
  it('passes env the server accepts', async () => {
    const r = await ssh.exec('printf "%s|%s" "$FERROSSH_A" "$NOT_ACCEPTED"', { env: { FERROSSH_A: 'one two', NOT_ACCEPTED: 'x' } })
    expect(r.stdout.toString()).toBe('one two|')
  })
  it('keeps 64 MiB of binary output intact', async () => {
    const r = await ssh.exec('head -c 67108864 /dev/urandom > /tmp/ferrossh-64m && sha256sum /tmp/ferrossh-64m >&2 && cat /tmp/ferrossh-64m; rm -f /tmp/ferrossh-64m')
    expect(r.stdout.length).toBe(64 * 1024 * 1024)
    expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(r.stderr.toString().split(' ')[0])
  })
  it('maxBuffer stops at the limit with the output so far', async () => {
    const e = (await ssh.exec('yes', { maxBuffer: 100_000 }).catch((x) => x)) as CommandError
    expect(e).toBeInstanceOf(CommandError)
    expect(e.reason).toBe('maxBuffer')
    expect(e.stdout.length).toBe(100_000)
    expect(e.stdout.subarray(0, 4).toString()).toBe('y\ny\n')
    expect((await ssh.exec('echo still')).stdout.toString()).toBe('still\n')
  })
  it('timeout rejects with TimeoutError (phase exec) and the connection stays usable', async () => {
    const t = Date.now()
    const e = (await ssh.exec('sleep 10', { timeout: 300 }).catch((x) => x)) as TimeoutError
    expect(e).toBeInstanceOf(TimeoutError)
    expect(e.phase).toBe('exec')
    expect(Date.now() - t).toBeLessThan(3000)
    expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
  })
  it('abort rejects with AbortError and the connection stays usable', async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 200)
    const e = await ssh.exec('sleep 10', { signal: ac.signal }).catch((x) => x)
    expect(e).toBeInstanceOf(AbortError)
    expect(e.code).toBe('ABORT_ERR')
    expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
  })
  it("every AbortError carries the signal's reason as cause: exec with a stream stdin, spawn's streams", async () => {
    const why = new Error('user pressed cancel')
    const pre = new AbortController()
    pre.abort(why)
    const e1 = await ssh.exec('cat', { stdin: Readable.from([Buffer.from('x')]), signal: pre.signal }).catch((x) => x)
    expect(e1).toBeInstanceOf(AbortError)
    expect(e1.cause).toBe(why)
    const mid = new AbortController()
    const running = ssh.exec('cat', { stdin: new Readable({ read() {} }), signal: mid.signal }).catch((x) => x)
    setTimeout(() => mid.abort(why), 200)
    const e2 = await running
    expect(e2).toBeInstanceOf(AbortError)
    expect(e2.cause).toBe(why)
    const ac = new AbortController()
    const p = ssh.spawn('sleep 10', { signal: ac.signal })
    const outError = new Promise<Error>((r) => p.stdout.once('error', r))
    p.stderr.on('error', () => {})
    p.stdin.on('error', () => {})
    p.exited.catch(() => {})
    setTimeout(() => ac.abort(why), 200)
    const e3 = await outError
    expect(e3).toBeInstanceOf(AbortError)
    expect(e3.cause).toBe(why)
    expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
  })
  it('check: true turns a failure into CommandError with the output', async () => {
    const e = (await ssh.exec('echo partial; echo bad thing >&2; exit 4', { check: true }).catch((x) => x)) as CommandError
    expect(e).toBeInstanceOf(CommandError)
    expect(e).toMatchObject({ exitCode: 4, signal: null, reason: 'exit' })
    expect(e.stdout.toString()).toBe('partial\n')
    expect(e.message).toContain('bad thing')
    await expect(ssh.exec('true', { check: true })).resolves.toMatchObject({ code: 0 })
  })
  it('stdin never shows up in errors or inspect', async () => {
    const secret = 'stdin-secret-' + randomBytes(6).toString('hex')
    const e = await ssh.exec('exit 2', { stdin: secret, check: true }).catch((x) => x)
    expect(inspect(e) + e.message).not.toContain(secret)
  })
  it('bad options are ConfigErrors', async () => {
    await expect(ssh.exec('')).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.exec('true', { timeout: -1 })).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.exec('true', { env: { 'A=B': 'x' } })).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.exec('true', { stdin: 42 as never })).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.exec('true', { pty: { cols: -3 } })).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.spawn('true').kill(5 as never)).rejects.toBeInstanceOf(ConfigError)
  })
  it('bad per-call flags, signals and terminal sizes are ConfigErrors naming the option, and the channel or connection stays usable', async () => {
    await expect(ssh.exec('true', { agentForward: 'yes' as never })).rejects.toMatchObject({ option: 'agentForward', message: 'agentForward: must be a boolean, got string' })
    await expect(ssh.exec('true', { check: 1 as never })).rejects.toMatchObject({ option: 'check', message: 'check: must be a boolean, got number' })
    expect(() => ssh.spawn('true', { signal: 5 as never })).toThrow(ConfigError)
    expect(() => ssh.spawn('true', { agentForward: 'no' as never })).toThrow(/agentForward: must be a boolean/)
    await expect(ssh.shell({ agentForward: 1 as never })).rejects.toMatchObject({ option: 'agentForward' })
    await expect(ssh.shell({ signal: {} as never })).rejects.toMatchObject({ option: 'signal' })

    // a signal that reaches sshd's forked child before it has exec'd the command can be lost,
    // so the kill below waits for the command's first output
    const p = ssh.spawn('echo started; exec sleep 30', { pty: true })
    let seen = ''
    const started = new Promise<void>((resolve) => p.stdout.on('data', (c: Buffer) => { seen += c.toString(); if (seen.includes('started')) resolve() }))
    await expect(p.resize(-1, 24)).rejects.toMatchObject({ option: 'cols', message: 'resize: cols must be an integer between 0 and 65535, got -1' })
    await expect(p.resize(80, 'x' as never)).rejects.toMatchObject({ option: 'rows', message: 'resize: rows must be an integer between 0 and 65535, got string' })
    await expect(p.resize(70_000, 24)).rejects.toBeInstanceOf(ConfigError)
    await p.resize(100, 30)
    await started
    await p.kill('KILL')
    expect(await p.exited).toEqual({ code: null, signal: 'KILL' })

    const sh = await ssh.shell()
    await expect(sh.resize(1.5, 24)).rejects.toMatchObject({ option: 'cols' })
    await expect(sh.kill(9 as never)).rejects.toMatchObject({ option: 'signal' })
    sh.resume()
    sh.end('exit 3\n')
    expect(await sh.exited).toEqual({ code: 3, signal: null })
  })
  it('null options mean none, as in fs; options that are not an object are ConfigErrors', async () => {
    expect((await ssh.exec('echo a', null as never)).stdout.toString()).toBe('a\n')
    expect(await ssh.spawn('exit 2', null as never).exited).toEqual({ code: 2, signal: null })
    const sh = await ssh.shell(null as never)
    sh.resume()
    sh.end('exit 0\n')
    expect((await sh.exited).code).toBe(0)
    const sftp = await ssh.sftp(null as never)
    expect(await sftp.exists('/')).toBe(true)
    await sftp.close()
    await expect(ssh.exec('true', 'fast' as never)).rejects.toMatchObject({ option: 'options' })
    expect(() => ssh.spawn('true', 5 as never)).toThrow(ConfigError)
  })
  it('a pty request gives the command a terminal', async () => {
    const r = await ssh.exec('tty; stty size', { pty: { cols: 91, rows: 33 } })
    expect(r.stdout.toString()).toMatch(/\/dev\/pts\/\d+/)
    expect(r.stdout.toString()).toContain('33 91')
  })
})

describe('requests sshd would drop the connection over, and call options', () => {
  it('a NUL byte or an oversized command, env value or subsystem name is a ConfigError for that call; the connection goes on', async () => {
    const bystander = ssh.spawn('sleep 1; echo still-here')
    let out = ''
    bystander.stdout.on('data', (c: Buffer) => { out += c.toString() })
    const refused: [string, () => Promise<unknown>][] = [
      ['command', () => ssh.exec('echo a\0b')],
      ['env', () => ssh.exec('true', { env: { FOO_A: 'x\0y' } })],
      ['name', () => ssh.subsystem('sf\0tp')],
      ['command', () => ssh.exec(`echo ${'a'.repeat(300_000)}`)],
      ['env', () => ssh.exec('true', { env: { FOO_A: 'b'.repeat(300_000) } })],
      ['command', async () => ssh.spawn('echo a\0b')],
    ]
    for (const [option, call] of refused) {
      const e = await call().then(() => undefined, (x: unknown) => x)
      expect(e, option).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).option).toBe(option)
    }
    expect(await bystander.exited).toEqual({ code: 0, signal: null })
    expect(out).toBe('still-here\n')
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
  })
  it('a misspelt option of exec, spawn, shell, subsystem or pty is a ConfigError with the likely name', async () => {
    const cases: [string, () => unknown, string, string][] = [
      ['exec', () => ssh.exec('true', { timout: 100 } as never), 'timout', 'timeout'],
      ['exec', () => ssh.exec('true', { maxbuffer: 10 } as never), 'maxbuffer', 'maxBuffer'],
      ['spawn', () => ssh.spawn('true', { evn: {} } as never), 'evn', 'env'],
      ['shell', () => ssh.shell({ sginal: undefined } as never), 'sginal', 'signal'],
      ['subsystem', () => ssh.subsystem('sftp', { sginal: undefined } as never), 'sginal', 'signal'],
      ['pty', () => ssh.exec('true', { pty: { columns: 120 } } as never), 'pty.columns', 'cols'],
    ]
    for (const [what, call, option, hint] of cases) {
      let e: unknown
      try { await call() } catch (x) { e = x }
      expect(e, what).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).option, what).toBe(option)
      expect((e as Error).message, what).toContain(`'${hint}'`)
    }
  })
  it('a Readable stdin: object-mode chunks that are no bytes fail the call; timeout Infinity or past 2^31 ms is no immediate timeout', async () => {
    const e = await ssh.exec('cat', { stdin: Readable.from([1, 2, 3]) }).then(() => undefined, (x: unknown) => x)
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).option).toBe('stdin')
    for (const timeout of [Infinity, 2 ** 31, 30 * 24 * 3600 * 1000]) {
      const r = await ssh.exec('sleep 0.2; cat', { stdin: Readable.from([Buffer.from('x')]), timeout })
      expect(r.stdout.toString()).toBe('x')
    }
    // an already-ended Readable is an empty stdin, not one that never ends
    const done = Readable.from([])
    done.resume()
    await new Promise((r) => done.once('end', r))
    expect((await withTimeoutOf(ssh.exec('cat; echo end', { stdin: done }), 10_000)).stdout.toString()).toBe('end\n')
  })
  it("'close' comes when only stdout is read, as ChildProcess's does; a signal outside RFC 4254 keeps OpenSSH's name", async () => {
    const p = ssh.spawn('echo out; echo err >&2')
    let got = ''
    p.stdout.on('data', (c: Buffer) => { got += c.toString() })
    const [code] = await withTimeoutOf(new Promise<unknown[]>((r) => p.once('close', (...a: unknown[]) => r(a))), 10_000)
    expect(code).toBe(0)
    expect(got).toBe('out\n')
    expect((await ssh.exec('kill -BUS $$')).signal).toBe('SIG@openssh.com')
  })
  it('a shell read to its end with for await keeps its exit status', async () => {
    for (let i = 0; i < 3; i++) {
      const sh = await ssh.shell({ pty: false })
      sh.write('exec >&- 2>&-; sleep 0.3; exit 4\n')
      for await (const _ of sh) { /* nothing is written */ }
      expect(await sh.exited).toEqual({ code: 4, signal: null })
    }
    const sh = await ssh.shell()
    sh.write('echo hello; exit 5\n')
    let text = ''
    for await (const c of sh) text += c.toString()
    expect(text).toContain('hello')
    expect(await sh.exited).toEqual({ code: 5, signal: null })
  })
})

function withTimeoutOf<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined
  return Promise.race([p, new Promise<never>((_, rej) => { t = setTimeout(() => rej(new Error(`not within ${ms} ms`)), ms) })]).finally(() => clearTimeout(t))
}
