// Proxy commands (nc, OpenSSH's `ssh -W`), SOCKS5 (Debian's microsocks), SOCKS4/4a (the
// library's own forwardDynamic as the proxy) and HTTP CONNECT (Debian's tinyproxy), all on
// loopback. Where a proxy can bind its outgoing side to another loopback address
// (127.0.0.2…), the server's $SSH_CONNECTION shows the connection really came through it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'

import { ConfigError, connect, DisconnectError, ProxyError, TimeoutError, type ConnectOptions, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import {
  countLines, escapeRe, freeLoopbackPort, processState, rejection, startDaemon, until, type Daemon,
} from './fixtures/helpers'

let sshd: Sshd // the target: 127.0.0.1 and ::1
let relay: Sshd // an OpenSSH jump server for `ssh -W` and forwardDynamic
let dir: string
let wrapper: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-proxy-'))
  sshd = await startSshd({ listen: ['127.0.0.1', '::1'] })
  relay = await startSshd({ authorizedKeys: [sshd.userKey.publicKey] })
  // records its pid, then becomes the real proxy command (same pid)
  wrapper = join(dir, 'pidwrap.sh')
  writeFileSync(wrapper, '#!/bin/sh\necho $$ > "$1"\nshift\nexec "$@"\n')
  chmodSync(wrapper, 0o755)
})
afterAll(async () => {
  await Promise.all([sshd?.stop(), relay?.stop()])
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const options = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path,
  hostKey: { knownHosts: sshd.knownHostsFile }, connectTimeout: 15_000, ...extra,
})

/** The client address the server saw, from $SSH_CONNECTION. */
async function clientAddress(ssh: SshClient): Promise<string> {
  const r = await ssh.exec('echo "$SSH_CONNECTION"', { timeout: 10_000 })
  return r.stdout.toString().trim().split(' ')[0]
}

/** known_hosts naming the target `localhost` (for proxies that resolve the name themselves). */
function localhostKnownHosts(): string {
  const kh = join(dir, 'known_hosts_localhost')
  writeFileSync(kh, sshd.knownHostsLines.map((l) => l.replace(/^\S+/, `[localhost]:${sshd.port}`)).join('\n') + '\n')
  return kh
}

function directTcpip(via: Sshd, host: string, port: number): number {
  return countLines(via.log(), new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target ${escapeRe(host)} port ${port}$`))
}

let pidSeq = 0
/** A proxy command run through the pid-recording wrapper; `pid()` reads the pid it wrote. */
function tracked(command: string): { command: string; pid: () => number } {
  const file = join(dir, `proxy-${++pidSeq}.pid`)
  return {
    command: `${wrapper} ${file} ${command}`,
    pid: () => {
      if (!existsSync(file)) throw new Error('the proxy command never started (no pid file)')
      return Number(readFileSync(file, 'utf8').trim())
    },
  }
}

const gone = (pid: number): Promise<void> => until(() => processState(pid) === null, 5000, `proxy command ${pid} gone`, () => processState(pid))

describe('proxyCommand', () => {
  it('nc %h %p carries the connection, and the process is killed when the connection closes', async () => {
    const lines: string[] = []
    const p = tracked('nc -s 127.0.0.4 %h %p')
    const ssh = await connect(options({ proxyCommand: p.command, debug: (l) => lines.push(l) }))
    const pid = p.pid()
    try {
      // nc's own source address: the bytes went through nc
      expect(await clientAddress(ssh)).toBe('127.0.0.4')
      // the trace says a proxy command runs, never its command line (it may carry a secret)
      expect(lines.some((l) => l.includes('running the proxy command'))).toBe(true)
      expect(lines.join('\n')).not.toContain('nc -s 127.0.0.4')
      expect(processState(pid)).toMatch(/^[RSD]$/)
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).toBe('nc')
    } finally {
      await ssh.close()
    }
    await gone(pid)
  })

  it('bulk data both ways at once through nc %h %p: 32 MiB up and back through cat', async () => {
    // nc blocks writing its stdout while nobody reads it, and stops reading its stdin meanwhile
    const ssh = await connect(options({ proxyCommand: 'nc %h %p' }))
    try {
      const up = randomBytes(32 << 20)
      const r = await ssh.exec('cat', { stdin: up, timeout: 60_000, maxBuffer: 64 << 20 })
      expect(r.stdout.length).toBe(up.length)
      expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(createHash('sha256').update(up).digest('hex'))
      expect((await ssh.exec('echo still-alive', { timeout: 10_000 })).stdout.toString()).toBe('still-alive\n')
    } finally {
      await ssh.close()
    }
  }, 90_000)

  it('%r, %n and %% are expanded', async () => {
    const out = join(dir, 'tokens.txt')
    const ssh = await connect(options({ proxyCommand: `sh -c 'echo "%r|%n|%%|%h|%p" > ${out}; exec nc %h %p'` }))
    await ssh.close()
    expect(readFileSync(out, 'utf8')).toBe(`${sshd.user}|127.0.0.1|%|127.0.0.1|${sshd.port}\n`)
  })

  it('OpenSSH as the jump: ssh -W %h:%p through another server', async () => {
    const before = directTcpip(relay, '127.0.0.1', sshd.port)
    const command = [
      'ssh', '-F', '/dev/null', '-W', '%h:%p', '-p', String(relay.port), '-i', sshd.userKey.path,
      '-o', `UserKnownHostsFile=${relay.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
      '-o', 'GlobalKnownHostsFile=/dev/null', '%r@127.0.0.1',
    ].join(' ')
    const p = tracked(command)
    const ssh = await connect(options({ proxyCommand: p.command }))
    const pid = p.pid()
    try {
      expect((await ssh.exec('echo through-ssh-W')).stdout.toString()).toBe('through-ssh-W\n')
      expect(directTcpip(relay, '127.0.0.1', sshd.port)).toBe(before + 1)
    } finally {
      await ssh.close()
    }
    await gone(pid)
  })

  it('a proxy command that exits at once is a ProxyError with its stderr and command, quickly', async () => {
    const command = 'sh -c "echo no route to host >&2; exit 3"'
    const t = Date.now()
    // several at once: the stderr must be there every time, not only when the reader wins a race
    const errors = await Promise.all(Array.from({ length: 8 }, () => rejection(connect(options({ proxyCommand: command })))))
    expect(Date.now() - t).toBeLessThan(5000)
    for (const e of errors) {
      expect(e).toBeInstanceOf(ProxyError)
      expect(e.code).toBe('ERR_SSH_PROXY')
      expect(e.command).toBe(command)
      expect(e.message).toMatch(/exit status:? 3/)
      expect(e.stderr, e.message).toBe('no route to host')
      expect(e.message).toContain('no route to host')
    }
  })

  it('the cause of a failed proxy command is a typed error, like a failed jump host\'s', async () => {
    const e = await rejection(connect(options({ proxyCommand: 'sh -c "exit 3"' })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.cause).toBeDefined()
    expect(e.cause).toBeInstanceOf(DisconnectError)
    expect(e.cause).toMatchObject({ code: 'ERR_SSH_DISCONNECTED' })
  })

  it("a proxy command's arguments stay out of the message and util.inspect (they may carry secrets); its stderr's end is quoted", async () => {
    const command = `sh -c 'echo ${'x'.repeat(3000)}END >&2; exit 4' TOKEN=tok-s3cret-42`
    const e = await rejection(connect(options({ proxyCommand: command })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toContain('"sh"')
    expect(e.message + inspect(e)).not.toContain('tok-s3cret-42')
    expect(e.message).toMatch(/…x+END$/)
    expect(e.message.length).toBeLessThan(1300)
    // the whole of both stays on the error for who asks
    expect(e.command).toBe(command)
    expect(e.stderr).toBe(`${'x'.repeat(3000)}END`)
  })
  it('`false` and a missing program fail the same way', async () => {
    const t = Date.now()
    const f = await rejection(connect(options({ proxyCommand: 'false' })))
    expect(f).toBeInstanceOf(ProxyError)
    expect(f.command).toBe('false')
    const missing = await rejection(connect(options({ proxyCommand: '/nonexistent/ferrossh-proxy %h %p' })))
    expect(missing).toBeInstanceOf(ProxyError)
    expect(missing.command).toBe(`/nonexistent/ferrossh-proxy 127.0.0.1 ${sshd.port}`)
    expect(String(missing.stderr)).toMatch(/not found|No such file/)
    expect(Date.now() - t).toBeLessThan(8000)
  })

  it('a proxy command that never speaks SSH times out and is killed', async () => {
    const p = tracked('sleep 120')
    const t = Date.now()
    const e = await rejection(connect(options({ proxyCommand: p.command, connectTimeout: 1000 })))
    expect(Date.now() - t).toBeLessThan(6000)
    expect(e instanceof ProxyError || e instanceof TimeoutError, inspect(e)).toBe(true)
    await gone(p.pid())
  })

  it('a proxy command whose far end is not SSH fails and is killed', async () => {
    // a version line, then a packet length no SSH implementation accepts
    const junk = net.createServer((s) => s.write(Buffer.concat([Buffer.from('SSH-2.0-junk\r\n'), Buffer.alloc(64, 0xff)]))).listen(0, '127.0.0.1')
    await new Promise((r) => junk.once('listening', r))
    const p = tracked(`nc 127.0.0.1 ${(junk.address() as net.AddressInfo).port}`)
    try {
      const t = Date.now()
      const e = await rejection(connect(options({ proxyCommand: p.command, connectTimeout: 10_000 })))
      expect(Date.now() - t).toBeLessThan(5000)
      expect(e).toBeInstanceOf(ProxyError)
      expect(e.command).toBe(p.command)
      await gone(p.pid())
    } finally {
      junk.close()
    }
  })
})

describe('SOCKS5 (microsocks)', () => {
  let open: Daemon // no authentication; binds its outgoing side to 127.0.0.2
  let authed: Daemon // user 'al@ice', password 'pw:s3cr3t'
  let openPort: number
  let authedPort: number
  const USER = 'al@ice'
  const PASS = 'pw:s3cr3t'
  beforeAll(async () => {
    openPort = await freeLoopbackPort()
    open = await startDaemon('microsocks', ['-i', '127.0.0.1', '-p', String(openPort), '-b', '127.0.0.2'], '127.0.0.1', openPort)
    authedPort = await freeLoopbackPort()
    authed = await startDaemon('microsocks', ['-i', '127.0.0.1', '-p', String(authedPort), '-u', USER, '-P', PASS], '127.0.0.1', authedPort)
  })
  afterAll(async () => {
    await open?.stop()
    await authed?.stop()
  })

  it('socks5:// carries the connection', async () => {
    const ssh = await connect(options({ proxy: `socks5://127.0.0.1:${openPort}` }))
    try {
      expect(await clientAddress(ssh)).toBe('127.0.0.2')
    } finally {
      await ssh.close()
    }
  })

  it('socks5h:// hands the host name to the proxy, and the host key is checked under that name', async () => {
    const ssh = await connect(options({ host: 'localhost', hostKey: { knownHosts: localhostKnownHosts() }, proxy: `socks5h://${encodeURIComponent(USER)}:${encodeURIComponent(PASS)}@127.0.0.1:${authedPort}` }))
    try {
      expect((await ssh.exec('echo via-name')).stdout.toString()).toBe('via-name\n')
    } finally {
      await ssh.close()
    }
    expect(authed.output()).toContain(`connected to localhost:${sshd.port}`)
  })

  it('user name and password (percent-encoded in the URL)', async () => {
    const ssh = await connect(options({ proxy: `socks5://al%40ice:pw%3As3cr3t@127.0.0.1:${authedPort}` }))
    expect((await ssh.exec('echo authed')).stdout.toString()).toBe('authed\n')
    await ssh.close()
  })

  it('no credentials for a proxy that needs them is a ProxyError that says so', async () => {
    const e = await rejection(connect(options({ proxy: `socks5://127.0.0.1:${authedPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.host).toBe(`127.0.0.1:${authedPort}`)
    expect(e.message).toMatch(/user name and password/)
  })

  it('a wrong password is a ProxyError that does not show the password', async () => {
    const e = await rejection(connect(options({ proxy: `socks5://al%40ice:not-the-pw-42@127.0.0.1:${authedPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toMatch(/rejected the user name or password/)
    expect(e.message + inspect(e) + JSON.stringify(e)).not.toContain('not-the-pw-42')
  })

  it("a '%' in the password not followed by two hex digits is a ConfigError that does not show the password", async () => {
    for (const proxy of [`socks5://alice:s3cret%\u20acuro@127.0.0.1:${authedPort}`, `http://alice:s3cret%zz@127.0.0.1:${authedPort}`]) {
      const e = await rejection(connect(options({ proxy })))
      expect(e).toBeInstanceOf(ConfigError)
      expect(e.option).toBe('proxy')
      expect(e.message).toMatch(/password has a '%' not followed by two hex digits/)
      expect(e.message + inspect(e) + JSON.stringify(e)).not.toContain('s3cret')
    }
  })

  it('a target the proxy cannot reach is a ProxyError naming the target', async () => {
    const dead = await freeLoopbackPort()
    const e = await rejection(connect(options({ port: dead, proxy: `socks5://127.0.0.1:${openPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toContain(`could not connect to 127.0.0.1:${dead}`)
  })
})

describe('SOCKS4 and SOCKS4a (forwardDynamic of another connection as the proxy)', () => {
  let via: SshClient
  let socksPort: number
  beforeAll(async () => {
    via = await connect({ host: relay.host, port: relay.port, username: relay.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: relay.knownHostsFile } })
    const f = await via.forwardDynamic()
    socksPort = f.localPort!
  })
  afterAll(async () => { await via?.close() })

  it('socks4:// with an IPv4 target', async () => {
    const before = directTcpip(relay, '127.0.0.1', sshd.port)
    const ssh = await connect(options({ proxy: `socks4://127.0.0.1:${socksPort}` }))
    expect((await ssh.exec('echo socks4')).stdout.toString()).toBe('socks4\n')
    await ssh.close()
    expect(directTcpip(relay, '127.0.0.1', sshd.port)).toBe(before + 1)
  })

  it('socks4a:// passes the host name for the proxy side to resolve', async () => {
    const before = directTcpip(relay, 'localhost', sshd.port)
    const ssh = await connect(options({ host: 'localhost', hostKey: { knownHosts: localhostKnownHosts() }, proxy: `socks4a://127.0.0.1:${socksPort}` }))
    expect((await ssh.exec('echo socks4a')).stdout.toString()).toBe('socks4a\n')
    await ssh.close()
    expect(directTcpip(relay, 'localhost', sshd.port)).toBe(before + 1)
  })

  it('socks4:// with a host name resolves it locally to IPv4', async () => {
    const before = { name: directTcpip(relay, 'localhost', sshd.port), ip: directTcpip(relay, '127.0.0.1', sshd.port) }
    const ssh = await connect(options({ host: 'localhost', hostKey: { knownHosts: localhostKnownHosts() }, proxy: `socks4://127.0.0.1:${socksPort}` }))
    await ssh.close()
    expect(directTcpip(relay, 'localhost', sshd.port)).toBe(before.name)
    expect(directTcpip(relay, '127.0.0.1', sshd.port)).toBe(before.ip + 1)
  })

  it('a refused SOCKS4 request is a ProxyError with the reply code', async () => {
    const dead = await freeLoopbackPort()
    const e = await rejection(connect(options({ port: dead, proxy: `socks4://127.0.0.1:${socksPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toContain(`refused the connection to 127.0.0.1:${dead}`)
    expect(e.message).toContain('0x5b')
  })
})

describe('HTTP CONNECT (tinyproxy)', () => {
  let plain: Daemon // binds its outgoing side to 127.0.0.3
  let authed: Daemon // BasicAuth proxyuser / proxy-pw-7
  let plainPort: number
  let authedPort: number
  const tinyproxy = async (name: string, extra: string[]): Promise<[Daemon, number]> => {
    const port = await freeLoopbackPort()
    const conf = join(dir, `${name}.conf`)
    writeFileSync(conf, [
      `Port ${port}`, 'Listen 127.0.0.1', 'Allow 127.0.0.1', `ConnectPort ${sshd.port}`, 'Timeout 60',
      'MaxClients 50', 'LogLevel Info', ...extra,
    ].join('\n') + '\n')
    return [await startDaemon('tinyproxy', ['-d', '-c', conf], '127.0.0.1', port), port]
  }
  beforeAll(async () => {
    ;[plain, plainPort] = await tinyproxy('tinyproxy-plain', ['Bind 127.0.0.3'])
    ;[authed, authedPort] = await tinyproxy('tinyproxy-auth', ['BasicAuth proxyuser proxy-pw-7'])
  })
  afterAll(async () => {
    await plain?.stop()
    await authed?.stop()
  })

  it('http:// carries the connection', async () => {
    const ssh = await connect(options({ proxy: `http://127.0.0.1:${plainPort}` }))
    try {
      expect(await clientAddress(ssh)).toBe('127.0.0.3')
    } finally {
      await ssh.close()
    }
    expect(plain.output()).toContain(`CONNECT 127.0.0.1:${sshd.port}`)
  })

  it('a CONNECT the proxy refuses is a ProxyError with its status line', async () => {
    const e = await rejection(connect(options({ port: 1, proxy: `http://127.0.0.1:${plainPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.host).toBe(`127.0.0.1:${plainPort}`)
    expect(e.message).toMatch(/refused CONNECT 127\.0\.0\.1:1: HTTP\/1\.[01] 403/)
  })

  it('407 without credentials says the proxy needs a user name and password', async () => {
    const e = await rejection(connect(options({ proxy: `http://127.0.0.1:${authedPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toContain('407')
    expect(e.message).toMatch(/needs a user name and password/)
  })

  it('with credentials in the URL', async () => {
    const ssh = await connect(options({ proxy: `http://proxyuser:proxy-pw-7@127.0.0.1:${authedPort}` }))
    expect((await ssh.exec('echo http-authed')).stdout.toString()).toBe('http-authed\n')
    await ssh.close()
    const e = await rejection(connect(options({ proxy: `http://proxyuser:wrong-pw-99@127.0.0.1:${authedPort}` })))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message + inspect(e)).not.toContain('wrong-pw-99')
    // it does not claim the credentials are missing
    expect(e.message).not.toMatch(/needs a user name and password/)
    if (e.message.includes(' 407 ')) expect(e.message).toMatch(/refused the user name or password/)
  })
})

describe('proxy configuration and failures', () => {
  it('a 407 to credentials given says they were refused; a status line with control bytes is shown safely', async () => {
    let reply = 'HTTP/1.1 407 Proxy Authentication Required\r\n\r\n'
    const srv = net.createServer((s) => { s.on('error', () => {}); s.once('data', () => s.end(reply)) }).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    try {
      const e = await rejection(connect({ host: '127.0.0.1', port: 22, username: 'x', password: 'y', proxy: `http://u:p@127.0.0.1:${port}`, connectTimeout: 5000 }))
      expect(e).toBeInstanceOf(ProxyError)
      expect(e.message).toMatch(/407 .*refused the user name or password/)
      reply = 'HTTP/1.1 500 \x1b[31mred\x07\r\n\r\n'
      const g = await rejection(connect({ host: '127.0.0.1', port: 22, username: 'x', password: 'y', proxy: `http://127.0.0.1:${port}`, connectTimeout: 5000 }))
      expect(g).toBeInstanceOf(ProxyError)
      expect(g.message).toContain('500 ?[31mred?')
    } finally {
      srv.close()
    }
  })
  it('bad proxy URLs are ConfigErrors', async () => {
    for (const proxy of ['proxy:1080', 'ftp://127.0.0.1:21', 'socks5://:1080', 'socks5://127.0.0.1:0', 'socks5://127.0.0.1:99999', 'http://[::1:80', 'socks5://127.0.0.1:port']) {
      const e = await rejection(connect(options({ proxy })))
      expect(e, proxy).toBeInstanceOf(ConfigError)
      expect(e.option, proxy).toBe('proxy')
    }
  })

  it('conflicting or malformed proxy options are ConfigErrors', async () => {
    const both = await rejection(connect(options({ proxy: 'socks5://127.0.0.1:1080', proxyCommand: 'nc %h %p' })))
    expect(both).toBeInstanceOf(ConfigError)
    const empty = await rejection(connect(options({ proxyCommand: '   ' })))
    expect(empty).toBeInstanceOf(ConfigError)
    expect(empty.option).toBe('proxyCommand')
    const token = await rejection(connect(options({ proxyCommand: 'nc %x %p' })))
    expect(token).toBeInstanceOf(ConfigError)
    expect(token.option).toBe('proxyCommand')
  })

  it('a dead proxy port is a ProxyError naming the proxy, for every kind', async () => {
    const dead = await freeLoopbackPort()
    for (const scheme of ['socks5', 'socks4', 'socks4a', 'http']) {
      const e = await rejection(connect(options({ proxy: `${scheme}://127.0.0.1:${dead}` })))
      expect(e, scheme).toBeInstanceOf(ProxyError)
      expect(e.host).toBe(`127.0.0.1:${dead}`)
      expect(e.message).toMatch(/cannot connect to the proxy/)
    }
  })

  it('something that is not a SOCKS proxy is a ProxyError, not a hang', async () => {
    const e = await rejection(connect(options({ proxy: `socks5://127.0.0.1:${sshd.port}`, connectTimeout: 5000 })), 10_000)
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.message).toMatch(/not a SOCKS5 proxy/)
  })

  it('a proxy that never answers is bounded by connectTimeout', async () => {
    const sockets: net.Socket[] = []
    const silent = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1')
    await new Promise((r) => silent.once('listening', r))
    try {
      const t = Date.now()
      const e = await rejection(connect(options({ proxy: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`, connectTimeout: 500 })))
      expect(Date.now() - t).toBeLessThan(3000)
      expect(e).toBeInstanceOf(TimeoutError)
    } finally {
      sockets.forEach((s) => s.destroy())
      silent.close()
    }
  })
})
