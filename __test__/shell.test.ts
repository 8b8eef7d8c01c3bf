import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Readable } from 'node:stream'

import { ConfigError, connect, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let ssh: SshClient

beforeAll(async () => {
  sshd = await startSshd()
  ssh = await connect({
    host: sshd.host, port: sshd.port, username: sshd.user,
    privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile },
  })
})
afterAll(async () => {
  await ssh?.close()
  await sshd?.stop()
})

/**
 * Reads `stream` until `pattern` matches the text seen so far. A pty echoes input and
 * adds prompts and escape sequences, so callers match on output the input cannot contain.
 */
function readUntil(stream: Readable, pattern: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const done = (err?: Error): void => {
      clearTimeout(timer)
      stream.off('data', onData)
      stream.off('error', onError)
      stream.off('end', onEnd)
      stream.pause()
      if (err) reject(err)
      else resolve(text)
    }
    const onData = (c: Buffer): void => {
      text += c.toString('utf8')
      if (pattern.test(text)) done()
    }
    const onError = (e: Error): void => done(e)
    const onEnd = (): void => done(new Error(`stream ended before ${pattern}; got ${JSON.stringify(text)}`))
    const timer = setTimeout(() => done(new Error(`no ${pattern} within ${ms} ms; got ${JSON.stringify(text)}`)), ms)
    stream.on('data', onData)
    stream.once('error', onError)
    stream.once('end', onEnd)
    // an explicit pause() by an earlier reader is not undone by adding a 'data' listener
    stream.resume()
  })
}

function collect(stream: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    stream.on('data', (c: Buffer) => { text += c.toString('utf8') })
    stream.once('end', () => resolve(text))
    stream.once('error', reject)
  })
}

function ended(stream: Readable, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stream did not end within ${ms} ms`)), ms)
    stream.once('end', () => { clearTimeout(timer); resolve() })
    stream.once('error', (e) => { clearTimeout(timer); reject(e) })
    stream.resume()
  })
}

describe('shell', () => {
  it('pty round trip: a command typed into the shell runs and its output comes back', async () => {
    const sh = await ssh.shell()
    // the echoed input reads `mark$((1+1))`; only the shell's arithmetic produces `mark2`
    sh.write('echo mark$((1+1))\n')
    const text = await readUntil(sh, /mark2/)
    expect(text).toMatch(/mark2\r?\n/)
    sh.write('exit\n')
    await ended(sh)
  })

  it('the pty has the requested size', async () => {
    const p = ssh.spawn('stty size', { pty: { cols: 100, rows: 30 } })
    const [out, status] = await Promise.all([collect(p.stdout), p.exited])
    expect(out.trim()).toBe('30 100')
    expect(status).toEqual({ code: 0, signal: null })
  })

  it('resize() of a running command changes what stty reports', async () => {
    // the window-change request travels on the channel ahead of the newline, so sshd
    // applies the new size before `read` returns
    const p = ssh.spawn('stty size; read x; stty size', { pty: { cols: 100, rows: 30 } })
    await readUntil(p.stdout, /30 100/)
    await p.resize(120, 40)
    p.stdin.write('\n')
    await readUntil(p.stdout, /40 120/)
    p.stdout.resume()
    expect(await p.exited).toEqual({ code: 0, signal: null })
  })

  it('resize() of an interactive shell changes what stty reports', async () => {
    const sh = await ssh.shell({ pty: { cols: 100, rows: 30 } })
    sh.write('stty size | sed "s/^/size=/"\n')
    await readUntil(sh, /size=30 100/)
    // a terminal emulator resizes the shell it drew, not a separate process
    await sh.resize(120, 40)
    sh.write('stty size | sed "s/^/size=/"\n')
    await readUntil(sh, /size=40 120/)
    sh.write('exit\n')
    await ended(sh)
  })

  it('exited of a shell reports its exit status', async () => {
    const sh = await ssh.shell()
    sh.resume()
    sh.write('exit 7\n')
    expect(await sh.exited).toEqual({ code: 7, signal: null })
  })
})

describe('terminal modes', () => {
  const sttyAll = async (modes: Record<string, number>): Promise<string> => {
    const p = ssh.spawn('stty -a', { pty: { modes } })
    const [out, status] = await Promise.all([collect(p.stdout), p.exited])
    expect(status).toEqual({ code: 0, signal: null })
    return out
  }
  // stty -a lists flags as words, `-echo` when off; ` echo` with a space before it when on
  const flag = (out: string, name: string): boolean | undefined =>
    new RegExp(`(^|\\s)-${name}(\\s|$)`).test(out) ? false : new RegExp(`(^|\\s)${name}(\\s|$)`).test(out) ? true : undefined

  it('named modes (as ssh2 takes them) reach the remote pty: flags, a control character and the speeds', async () => {
    const out = await sttyAll({ ECHO: 0, ICANON: 0, VINTR: 7, TTY_OP_ISPEED: 9600, TTY_OP_OSPEED: 9600 })
    expect(flag(out, 'echo')).toBe(false)
    expect(flag(out, 'icanon')).toBe(false)
    expect(out).toMatch(/intr = \^G;/)
    expect(out).toMatch(/speed 9600 baud/)
    // and the other way round, so neither result is the pty's default
    const on = await sttyAll({ echo: 1, ICANON: 1, VINTR: 3, TTY_OP_ISPEED: 38400, TTY_OP_OSPEED: 38400 })
    expect(flag(on, 'echo')).toBe(true)
    expect(flag(on, 'icanon')).toBe(true)
    expect(on).toMatch(/intr = \^C;/)
    expect(on).toMatch(/speed 38400 baud/)
  })

  it('modes given by opcode work the same', async () => {
    expect(flag(await sttyAll({ 53: 0 }), 'echo')).toBe(false)
    expect(flag(await sttyAll({ 53: 1 }), 'echo')).toBe(true)
  })

  it('bad modes and terminal types are ConfigErrors naming pty.modes / pty.term, and nothing is opened', async () => {
    const bad = (pty: unknown): ConfigError => {
      try {
        ssh.spawn('true', { pty: pty as never })
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError)
        return e as ConfigError
      }
      throw new Error(`spawn accepted ${JSON.stringify(pty)}`)
    }
    expect(bad({ modes: { ECHOO: 0 } }).message).toBe("pty.modes: unknown terminal mode 'ECHOO'; did you mean 'ECHO'?")
    expect(bad({ modes: { 0: 1 } }).message).toMatch(/0 is not a terminal mode opcode/)
    expect(bad({ modes: { 160: 1 } }).message).toMatch(/160 is not a terminal mode opcode/)
    expect(bad({ modes: { ECHO: -1 } }).message).toMatch(/ECHO must be an integer between 0 and 4294967295, got -1/)
    expect(bad({ modes: { ECHO: 1.5 } }).message).toMatch(/got 1.5/)
    expect(bad({ modes: { ECHO: 2 ** 32 } }).message).toMatch(/got 4294967296/)
    expect(bad({ modes: { ECHO: 'off' } }).message).toMatch(/got string/)
    expect(bad({ modes: [[53, 0]] }).option).toBe('pty.modes')
    expect(bad({ modes: 'ECHO=0' }).option).toBe('pty.modes')
    expect(bad({ term: 'xterm 256' }).option).toBe('pty.term')
    expect(bad({ term: '' }).option).toBe('pty.term')
    expect(bad({ term: 42 }).option).toBe('pty.term')
    await expect(ssh.exec('true', { pty: { modes: { NOPE: 1 } } })).rejects.toBeInstanceOf(ConfigError)
    await expect(ssh.shell({ pty: { modes: { ECHO: -2 } } })).rejects.toBeInstanceOf(ConfigError)
    // the connection is untouched
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
  })
})

describe('env', () => {
  it('an accepted variable reaches the command and a non-accepted one is ignored', async () => {
    const r = await ssh.exec('echo "${FERROSSH_X-unset}|${NOT_ACCEPTED_X-unset}"', {
      env: { FERROSSH_X: 'y', NOT_ACCEPTED_X: 'z' },
    })
    expect(r.stdout.toString()).toBe('y|unset\n')
    expect(r.code).toBe(0)
  })

  it('reaches a spawned command and an interactive shell', async () => {
    const p = ssh.spawn('echo "$FERROSSH_SPAWN"', { env: { FERROSSH_SPAWN: 'from-spawn' } })
    expect((await collect(p.stdout)).trim()).toBe('from-spawn')
    const sh = await ssh.shell({ env: { FERROSSH_SHELL: 'from-shell', NOT_ACCEPTED_Y: 'no' } })
    sh.write('echo "v=$FERROSSH_SHELL,${NOT_ACCEPTED_Y-unset}."\n')
    await readUntil(sh, /v=from-shell,unset\./)
    sh.write('exit\n')
    await ended(sh)
  })
})

describe('subsystem', () => {
  it('sftp: SSH_FXP_INIT gets SSH_FXP_VERSION back over the raw channel', async () => {
    const sub = await ssh.subsystem('sftp')
    const reply = new Promise<Buffer>((resolve, reject) => {
      let buf = Buffer.alloc(0)
      const onData = (c: Buffer): void => {
        buf = Buffer.concat([buf, c])
        if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          sub.off('data', onData)
          resolve(buf)
        }
      }
      sub.on('data', onData)
      sub.once('error', reject)
      sub.once('end', () => reject(new Error(`ended after ${buf.length} bytes`)))
    })
    // uint32 length 5, byte SSH_FXP_INIT (1), uint32 version 3
    sub.write(Buffer.from([0, 0, 0, 5, 1, 0, 0, 0, 3]))
    const msg = await reply
    expect(msg.readUInt32BE(0)).toBeGreaterThanOrEqual(5)
    expect(msg[4]).toBe(2) // SSH_FXP_VERSION
    expect(msg.readUInt32BE(5)).toBe(3)
    // sftp-server exits on EOF of its input, which ends our side too
    const end = ended(sub)
    sub.end()
    await end
  })

  it('an unknown subsystem is refused with a ChannelError', async () => {
    const e = await ssh.subsystem('no-such-subsystem').then(() => null, (err: Error) => err)
    expect(e).not.toBeNull()
    expect((e as { code?: string }).code).toBe('ERR_SSH_CHANNEL')
    // the connection survives the refusal
    expect((await ssh.exec('echo still')).stdout.toString()).toBe('still\n')
  })
})

describe('signals', () => {
  it("kill('TERM') ends sleep 30 with { code: null, signal: 'TERM' }", async () => {
    // a signal that reaches sshd's forked child before it has exec'd the command can be
    // lost, so wait for the command's first output before sending it
    const p = ssh.spawn('echo started; exec sleep 30')
    p.stderr.resume()
    await readUntil(p.stdout, /started/)
    p.stdout.resume()
    const t0 = Date.now()
    await p.kill('TERM')
    expect(await p.exited).toEqual({ code: null, signal: 'TERM' })
    expect(Date.now() - t0).toBeLessThan(10_000)
  })
})
