// Every kind of forwarding against a real OpenSSH server, carrying real traffic to a
// checking server in this process: 50 MiB each way at once with sha256 on both ends, and 50
// concurrent connections through one forward. Then refused targets, a server that forbids
// forwarding, close(), and bad specs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'

import { ChannelError, ConfigError, connect, ForwardError, type Forward, type SshClient } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import { countLines, escapeRe, freeLoopbackPort, rejection, tcpEndReader, until, withTimeout } from './fixtures/helpers'

const MiB = 1024 * 1024

let sshd: Sshd
let ssh: SshClient
let dir: string // the test's own sockets (0755: the server's session user must reach sha.sock)
let remoteDir: string // where the server (as the test user) creates sockets
let shaPort: number // the checking server, on 127.0.0.1 and ::1
let shaPath: string // the checking server on a Unix socket
const servers: net.Server[] = []
const connectOptions = () => ({
  host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path,
  hostKey: { knownHosts: sshd.knownHostsFile },
})

// ---------------------------------------------------------------------------------------
// The checking protocol. Client → server: a 16-byte key, the 8-byte length M it wants back,
// then its payload, then EOF. Server → client: M bytes of AES-128-CTR keystream under that
// key (while it is still receiving), then — after the client's EOF — the sha256 and length
// of the payload it received, then EOF. Both directions are checked byte-exactly.

function keystream(key: Buffer): (n: number) => Buffer {
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return (n) => c.update(Buffer.alloc(n))
}

function serveSha(sock: net.Socket): void {
  sock.on('error', () => {})
  let head = Buffer.alloc(0)
  let sending: Promise<void> | undefined
  const hash = createHash('sha256')
  let received = 0
  const body = (c: Buffer): void => { hash.update(c); received += c.length }
  sock.on('data', (c: Buffer) => {
    if (sending) return body(c)
    head = Buffer.concat([head, c])
    if (head.length < 24) return
    const gen = keystream(head.subarray(0, 16))
    const m = Number(head.readBigUInt64BE(16))
    if (head.length > 24) body(head.subarray(24))
    sending = (async () => {
      for (let off = 0; off < m;) {
        const n = Math.min(m - off, 256 * 1024)
        off += n
        if (!sock.write(gen(n))) await once(sock, 'drain')
      }
    })()
  })
  sock.on('end', () => {
    void (sending ?? Promise.resolve()).then(() => {
      const trailer = Buffer.alloc(40)
      hash.digest().copy(trailer)
      trailer.writeBigUInt64BE(BigInt(received), 32)
      sock.end(trailer)
    }, () => sock.destroy())
  })
}

/** Sends `up` bytes and receives `down` bytes at the same time over `sock`, checking both. */
async function exchange(sock: Duplex, up: number, down: number, ms = 60_000): Promise<void> {
  const key = randomBytes(16)
  const header = Buffer.alloc(24)
  key.copy(header)
  header.writeBigUInt64BE(BigInt(down), 16)
  const expected = keystream(key)
  const gotHash = createHash('sha256')
  const wantHash = createHash('sha256')
  const sentHash = createHash('sha256')
  let got = 0
  const trailer: Buffer[] = []
  let ended = false
  const reading = new Promise<void>((resolve, reject) => {
    sock.on('data', (c: Buffer) => {
      let rest = c
      if (got < down) {
        const take = Math.min(down - got, c.length)
        gotHash.update(c.subarray(0, take))
        wantHash.update(expected(take))
        got += take
        rest = c.subarray(take)
      }
      if (rest.length) trailer.push(rest)
    })
    sock.once('end', () => { ended = true; resolve() })
    sock.once('error', reject)
    sock.resume() // a socket paused after a SOCKS handshake does not resume by itself
    sock.once('close', () => { if (!ended) reject(new Error(`connection closed after ${got} of ${down} bytes, without EOF`)) })
  })
  const writing = (async () => {
    if (!sock.write(header)) await once(sock, 'drain')
    const gen = keystream(randomBytes(16))
    // uneven chunk sizes, so batching on either side cannot hide an off-by-one
    for (let off = 0, i = 1; off < up; i++) {
      const n = Math.min(up - off, 1 + ((i * 7919 * 131) % MiB))
      const chunk = gen(n)
      sentHash.update(chunk)
      off += n
      if (!sock.write(chunk)) await once(sock, 'drain')
    }
    sock.end()
  })()
  await withTimeout(Promise.all([reading, writing]), ms, `exchange of ${up}/${down} bytes (got ${got})`)
  expect(got).toBe(down)
  expect(gotHash.digest('hex')).toBe(wantHash.digest('hex'))
  const t = Buffer.concat(trailer)
  expect(t.length).toBe(40)
  expect(Number(t.readBigUInt64BE(32))).toBe(up)
  expect(t.subarray(0, 32).toString('hex')).toBe(sentHash.digest('hex'))
}

// ---------------------------------------------------------------------------------------
// Plain sockets and minimal SOCKS clients

function tcp(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return dial(net.connect({ port, host, allowHalfOpen: true }))
}

function unix(path: string): Promise<net.Socket> {
  return dial(net.connect({ path, allowHalfOpen: true }))
}

function dial(s: net.Socket): Promise<net.Socket> {
  return withTimeout(new Promise((resolve, reject) => {
    s.once('connect', () => { s.off('error', reject); resolve(s) })
    s.once('error', reject)
  }), 10_000, 'connect')
}

/** Reads exact byte counts during a handshake, then hands the socket back untouched. */
class HandshakeReader {
  #buf = Buffer.alloc(0)
  #wake: (() => void) | undefined
  #ended = false
  readonly #onData = (c: Buffer): void => { this.#buf = Buffer.concat([this.#buf, c]); this.#wake?.() }
  readonly #onEnd = (): void => { this.#ended = true; this.#wake?.() }
  constructor(private readonly s: net.Socket) {
    s.on('data', this.#onData)
    s.on('end', this.#onEnd)
    s.on('close', this.#onEnd)
  }
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n) {
      if (this.#ended) throw new Error(`closed during the handshake (${this.#buf.length} of ${n} bytes)`)
      await withTimeout(new Promise<void>((r) => { this.#wake = r }), 10_000, 'SOCKS reply')
    }
    const out = this.#buf.subarray(0, n)
    this.#buf = this.#buf.subarray(n)
    return out
  }
  release(): net.Socket {
    this.s.off('data', this.#onData)
    this.s.off('end', this.#onEnd)
    this.s.off('close', this.#onEnd)
    this.s.pause()
    if (this.#buf.length) this.s.unshift(this.#buf)
    return this.s
  }
}

type SocksTarget = { ipv4: string } | { ipv6: string } | { name: string }

/** RFC 1928 CONNECT; resolves with the socket and the reply code (0 = succeeded). */
async function socks5(proxyPort: number, target: SocksTarget, port: number): Promise<{ sock: net.Socket; reply: number }> {
  const s = await tcp(proxyPort)
  const r = new HandshakeReader(s)
  s.write(Buffer.from([5, 1, 0]))
  expect([...(await r.read(2))]).toEqual([5, 0])
  let addr: Buffer
  if ('ipv4' in target) addr = Buffer.from([1, ...target.ipv4.split('.').map(Number)])
  else if ('ipv6' in target) addr = Buffer.concat([Buffer.from([4]), ipv6Bytes(target.ipv6)])
  else addr = Buffer.concat([Buffer.from([3, target.name.length]), Buffer.from(target.name)])
  const p = Buffer.alloc(2)
  p.writeUInt16BE(port)
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, p]))
  const head = await r.read(4)
  expect(head[0]).toBe(5)
  const skip = head[3] === 1 ? 4 : head[3] === 4 ? 16 : (await r.read(1))[0]
  await r.read(skip + 2)
  return { sock: r.release(), reply: head[1] }
}

function ipv6Bytes(a: string): Buffer {
  if (a !== '::1') throw new Error('only ::1 here')
  const b = Buffer.alloc(16)
  b[15] = 1
  return b
}

/** SOCKS4 (IPv4 address) or SOCKS4a (host name) CONNECT; reply 0x5a = granted. */
async function socks4(proxyPort: number, target: { ipv4: string } | { name: string }, port: number): Promise<{ sock: net.Socket; reply: number }> {
  const s = await tcp(proxyPort)
  const r = new HandshakeReader(s)
  const p = Buffer.alloc(2)
  p.writeUInt16BE(port)
  const ip = 'ipv4' in target ? Buffer.from(target.ipv4.split('.').map(Number)) : Buffer.from([0, 0, 0, 1])
  const parts = [Buffer.from([4, 1]), p, ip, Buffer.from('ferrossh\0')]
  if ('name' in target) parts.push(Buffer.from(`${target.name}\0`))
  s.write(Buffer.concat(parts))
  const reply = await r.read(8)
  expect(reply[0]).toBe(0)
  return { sock: r.release(), reply: reply[1] }
}

/** Resolves with how many bytes arrived before the other side ended the connection (EOF, reset or close). */
function closedAfter(s: Duplex, ms = 10_000, what = 'connection closed'): Promise<number> {
  let n = 0
  s.on('data', (c: Buffer) => { n += c.length })
  return withTimeout(new Promise((resolve) => {
    if ((s as net.Socket).closed || s.destroyed || s.readableEnded) return resolve(n)
    // sockets here allow half-open connections: the peer's EOF is the end, 'close' may not follow
    s.once('end', () => resolve(n))
    s.once('error', () => resolve(n))
    s.once('close', () => resolve(n))
    s.resume()
  }), ms, what)
}

async function refused(open: () => Promise<unknown>): Promise<string> {
  const e = await rejection(open(), 10_000)
  return String(e.code)
}

// ---------------------------------------------------------------------------------------

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-forward-'))
  chmodSync(dir, 0o755)
  remoteDir = join(dir, 'remote')
  mkdirSync(remoteDir)
  chmodSync(remoteDir, 0o1777)
  sshd = await startSshd({ config: ['StreamLocalBindUnlink yes'] })
  ssh = await connect(connectOptions())
  // the checking server on 127.0.0.1 and ::1 with one port number, and on a Unix socket
  for (let attempt = 0; ; attempt++) {
    const v4 = net.createServer({ allowHalfOpen: true }, serveSha)
    await new Promise<void>((r) => v4.listen(0, '127.0.0.1', r))
    shaPort = (v4.address() as net.AddressInfo).port
    const v6 = net.createServer({ allowHalfOpen: true }, serveSha)
    const ok = await new Promise<boolean>((r) => {
      v6.once('error', () => r(false))
      v6.listen(shaPort, '::1', () => r(true))
    })
    if (ok) {
      servers.push(v4, v6)
      break
    }
    v4.close()
    if (attempt > 20) throw new Error('no port free on both 127.0.0.1 and ::1')
  }
  shaPath = join(dir, 'sha.sock')
  const u = net.createServer({ allowHalfOpen: true }, serveSha)
  await new Promise<void>((r) => u.listen(shaPath, r))
  chmodSync(shaPath, 0o777)
  servers.push(u)
})
afterAll(async () => {
  await ssh?.close()
  await sshd?.stop()
  for (const s of servers) s.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

let seq = 0
const sockPath = (base: string, name: string): string => join(base, `${name}-${++seq}.sock`)

interface Kind {
  name: string
  /** Sets the forward up; returns how to open one connection through it, and how to stop it. */
  setup: () => Promise<{ open: () => Promise<Duplex>; close: () => Promise<void> }>
}

const socksOpen = (f: Forward, how: (port: number) => Promise<{ sock: net.Socket; reply: number }>, granted: number) => async (): Promise<Duplex> => {
  const { sock, reply } = await how(f.localPort!)
  expect(reply).toBe(granted)
  return sock
}

const kinds: Kind[] = [
  {
    name: 'forwardLocal (TCP → TCP)',
    setup: async () => {
      const f = await ssh.forwardLocal({ localPort: 0, remoteHost: '127.0.0.1', remotePort: shaPort })
      expect(f.localPort).toBeGreaterThan(0)
      expect(f.localAddress).toBe('127.0.0.1')
      return { open: () => tcp(f.localPort!), close: () => f.close() }
    },
  },
  {
    name: 'forwardLocal to a remote Unix socket (remotePath)',
    setup: async () => {
      const f = await ssh.forwardLocal({ remotePath: shaPath })
      return { open: () => tcp(f.localPort!), close: () => f.close() }
    },
  },
  {
    name: 'forwardLocalUnix (Unix → TCP)',
    setup: async () => {
      const localPath = sockPath(dir, 'local')
      const f = await ssh.forwardLocalUnix({ localPath, remoteHost: '127.0.0.1', remotePort: shaPort })
      expect(f.localPath).toBe(localPath)
      return { open: () => unix(localPath), close: () => f.close() }
    },
  },
  {
    name: 'forwardRemote (remotePort 0 → reported port)',
    setup: async () => {
      const f = await ssh.forwardRemote({ remotePort: 0, localHost: '127.0.0.1', localPort: shaPort })
      expect(f.remotePort).toBeGreaterThan(0)
      return { open: () => tcp(f.remotePort!), close: () => f.close() }
    },
  },
  {
    name: 'forwardRemote to a local Unix socket (localPath)',
    setup: async () => {
      const f = await ssh.forwardRemote({ remoteHost: '127.0.0.1', remotePort: 0, localPath: shaPath })
      return { open: () => tcp(f.remotePort!), close: () => f.close() }
    },
  },
  {
    name: 'forwardRemoteUnix (server Unix socket → TCP)',
    setup: async () => {
      const remotePath = sockPath(remoteDir, 'remote')
      const f = await ssh.forwardRemoteUnix({ remotePath, localPort: shaPort })
      return { open: () => unix(remotePath), close: () => f.close() }
    },
  },
  {
    name: 'forwardDynamic, SOCKS5 to an IPv4 address',
    setup: async () => {
      const f = await ssh.forwardDynamic()
      return { open: socksOpen(f, (p) => socks5(p, { ipv4: '127.0.0.1' }, shaPort), 0), close: () => f.close() }
    },
  },
  {
    name: 'forwardDynamic, SOCKS5 to an IPv6 address',
    setup: async () => {
      const f = await ssh.forwardDynamic({ localHost: '127.0.0.1', localPort: 0 })
      return { open: socksOpen(f, (p) => socks5(p, { ipv6: '::1' }, shaPort), 0), close: () => f.close() }
    },
  },
  {
    name: 'forwardDynamic, SOCKS5 to the name localhost',
    setup: async () => {
      const f = await ssh.forwardDynamic()
      return { open: socksOpen(f, (p) => socks5(p, { name: 'localhost' }, shaPort), 0), close: () => f.close() }
    },
  },
  {
    name: 'forwardDynamic, SOCKS4 to an IPv4 address',
    setup: async () => {
      const f = await ssh.forwardDynamic()
      return { open: socksOpen(f, (p) => socks4(p, { ipv4: '127.0.0.1' }, shaPort), 0x5a), close: () => f.close() }
    },
  },
  {
    name: 'forwardDynamic, SOCKS4a to the name localhost',
    setup: async () => {
      const f = await ssh.forwardDynamic()
      return { open: socksOpen(f, (p) => socks4(p, { name: 'localhost' }, shaPort), 0x5a), close: () => f.close() }
    },
  },
  {
    name: 'openTcp Duplex',
    setup: async () => ({ open: () => ssh.openTcp('127.0.0.1', shaPort), close: async () => {} }),
  },
  {
    name: 'openUnix Duplex',
    setup: async () => ({ open: () => ssh.openUnix(shaPath), close: async () => {} }),
  },
]

describe.each(kinds)('$name', (kind) => {
  let fwd: Awaited<ReturnType<Kind['setup']>>
  beforeAll(async () => { fwd = await kind.setup() })
  afterAll(async () => { await fwd?.close() })

  it('50 MiB each way at once, sha256 intact on both ends', async () => {
    const s = await fwd.open()
    await exchange(s, 50 * MiB, 50 * MiB, 90_000)
  }, 120_000)

  it('50 concurrent connections through one forward, all intact', async () => {
    const conns = await Promise.all(Array.from({ length: 50 }, () => fwd.open()))
    await Promise.all(conns.map((s, i) => exchange(s, 64 * 1024 + i * 7919, 512 * 1024 - i * 4099, 90_000)))
  }, 120_000)
})

describe('routing evidence', () => {
  it('SOCKS names and IPv6 addresses reach the server as given: it resolves and dials them', async () => {
    const target = (host: string): number => countLines(sshd.log(), new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target ${escapeRe(host)} port ${shaPort}$`))
    const before = { name: target('localhost'), v6: target('::1') }
    const f = await ssh.forwardDynamic()
    try {
      for (const open of [
        () => socks5(f.localPort!, { name: 'localhost' }, shaPort),
        () => socks4(f.localPort!, { name: 'localhost' }, shaPort),
        () => socks5(f.localPort!, { ipv6: '::1' }, shaPort),
      ]) {
        const { sock } = await open()
        await exchange(sock, 1000, 1000)
      }
    } finally {
      await f.close()
    }
    expect(target('localhost')).toBe(before.name + 2)
    expect(target('::1')).toBe(before.v6 + 1)
  })
})

describe('flow control', () => {
  // russh reopens the SSH window when data arrives, so a channel's flow control stops at its
  // buffer (highWaterMark): below it other channels flow; above it the connection waits for
  // the slow reader, and nothing is lost (README, "Data path, and its one limit")
  it('a stalled forwarded client below highWaterMark does not stall other channels', async () => {
    const c = await connect({ ...connectOptions(), highWaterMark: 64 * MiB })
    const stalled: net.Socket[] = []
    try {
      const f = await c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })
      const s = await tcp(f.localPort!)
      stalled.push(s)
      s.pause()
      const header = Buffer.alloc(24)
      randomBytes(16).copy(header)
      header.writeBigUInt64BE(BigInt(16 * MiB), 16)
      s.write(header)
      await new Promise((r) => setTimeout(r, 1500))
      const r = await withTimeout(c.exec('echo unaffected'), 5000, 'exec beside a stalled forwarded connection')
      expect(r.stdout.toString()).toBe('unaffected\n')
      await exchange(await withTimeout(c.openTcp('127.0.0.1', shaPort), 5000, 'openTcp beside a stalled one'), MiB, MiB, 10_000)
    } finally {
      stalled.forEach((s) => s.destroy())
      await withTimeout(c.close(), 10_000, 'close').catch(() => {})
    }
  }, 60_000)

  it('above highWaterMark the connection waits for the stalled client and resumes with every byte', async () => {
    const c = await connect(connectOptions())
    try {
      const f = await c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })
      const s = await tcp(f.localPort!)
      s.pause()
      const header = Buffer.alloc(24)
      randomBytes(16).copy(header)
      header.writeBigUInt64BE(BigInt(64 * MiB), 16)
      s.write(header)
      await new Promise((r) => setTimeout(r, 1500))
      const other = c.exec('echo after')
      const early = await Promise.race([other.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 1000))])
      expect(early).toBe('waiting')
      let got = 0
      s.on('data', (d: Buffer) => { got += d.length })
      s.resume()
      expect((await withTimeout(other, 20_000, 'exec after the reader resumed')).stdout.toString()).toBe('after\n')
      await withTimeout(new Promise<void>((r) => { const t = setInterval(() => { if (got >= 64 * MiB) { clearInterval(t); r() } }, 50) }), 30_000, 'all bytes')
      expect(got).toBeGreaterThanOrEqual(64 * MiB)
      s.destroy()
    } finally {
      await withTimeout(c.close(), 10_000, 'close').catch(() => {})
    }
  }, 90_000)
})

describe('server-side use of a remote forward', () => {
  it('nc on the server reaches the reported port, and the bytes come back through the forward', async () => {
    const echo = net.createServer({ allowHalfOpen: true }, (s) => { s.on('error', () => {}); s.pipe(s) })
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r))
    try {
      const f = await ssh.forwardRemote({ remotePort: 0, localPort: (echo.address() as net.AddressInfo).port })
      const r = await ssh.exec(`nc -N 127.0.0.1 ${f.remotePort}`, { stdin: 'hello through -R\n', timeout: 15_000 })
      expect(r.stdout.toString()).toBe('hello through -R\n')
      expect(r.code).toBe(0)
      await f.close()
    } finally {
      echo.close()
    }
  })

  it('the server logs the forwarded channels it opened', async () => {
    const f = await ssh.forwardRemote({ remotePort: 0, localPort: shaPort })
    const before = countLines(sshd.log(), new RegExp(`forwarded-tcpip.*${escapeRe(String(f.remotePort))}|new forwarded-tcpip`))
    const s = await tcp(f.remotePort!)
    await exchange(s, 1000, 1000)
    await f.close()
    expect(countLines(sshd.log(), new RegExp(`forwarded-tcpip.*${escapeRe(String(f.remotePort))}|new forwarded-tcpip`))).toBeGreaterThan(before)
  })
})

describe('bracketed IPv6 targets', () => {
  // an echo server on ::1 alone: "[::1]" reaches it only if it is sent (or dialled) bare
  let echo: net.Server
  let port: number
  beforeAll(async () => {
    echo = net.createServer((c) => { c.on('error', () => {}); c.pipe(c) })
    await new Promise<void>((r) => echo.listen(0, '::1', r))
    port = (echo.address() as net.AddressInfo).port
  })
  afterAll(() => { echo?.close() })

  const roundTrip = async (s: Duplex): Promise<string> => {
    const got = new Promise<string>((r) => s.once('data', (c: Buffer) => r(c.toString())))
    s.write('ping')
    try { return await withTimeout(got, 10_000, 'echo') } finally { s.destroy() }
  }

  it("forwardLocal remoteHost '[::1]'", async () => {
    const f = await ssh.forwardLocal({ remoteHost: '[::1]', remotePort: port })
    try { expect(await roundTrip(await tcp(f.localPort!))).toBe('ping') } finally { await f.close() }
  })

  it("openTcp('[::1]')", async () => {
    expect(await roundTrip(await ssh.openTcp('[::1]', port))).toBe('ping')
  })

  it("forwardRemote localHost '[::1]'", async () => {
    const f = await ssh.forwardRemote({ remotePort: 0, localHost: '[::1]', localPort: port })
    try { expect(await roundTrip(await tcp(f.remotePort!))).toBe('ping') } finally { await f.close() }
  })
})

describe('refused targets', () => {
  let dead: number
  beforeAll(async () => { dead = await freeLoopbackPort() })

  it('forwardLocal: the forwarded client sees its connection closed, and the connection lives on', async () => {
    const f = await ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: dead })
    try {
      for (let i = 0; i < 3; i++) expect(await closedAfter(await tcp(f.localPort!))).toBe(0)
      expect(ssh.isClosed).toBe(false)
      expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
    } finally {
      await f.close()
    }
  })

  it('openTcp rejects with ChannelError reason connect-failed', async () => {
    const e = await rejection(ssh.openTcp('127.0.0.1', dead))
    expect(e).toBeInstanceOf(ChannelError)
    expect(e.code).toBe('ERR_SSH_CHANNEL')
    expect(e.reason).toBe('connect-failed')
    expect(e.message).toContain(`127.0.0.1:${dead}`)
  })

  it('openUnix to a missing socket rejects with a ChannelError', async () => {
    const e = await rejection(ssh.openUnix(join(dir, 'no-such.sock')))
    expect(e).toBeInstanceOf(ChannelError)
    expect(e.reason).toBe('connect-failed')
  })

  it('forwardDynamic answers SOCKS5 "connection refused" and SOCKS4 "rejected"', async () => {
    const f = await ssh.forwardDynamic()
    try {
      const five = await socks5(f.localPort!, { ipv4: '127.0.0.1' }, dead)
      expect(five.reply).toBe(5)
      expect(await closedAfter(five.sock)).toBe(0)
      const four = await socks4(f.localPort!, { ipv4: '127.0.0.1' }, dead)
      expect(four.reply).toBe(0x5b)
      expect(await closedAfter(four.sock)).toBe(0)
    } finally {
      await f.close()
    }
  })

  it('forwardDynamic closes a SOCKS5 request whose version byte is not 5, as ssh -D does', async () => {
    const f = await ssh.forwardDynamic()
    try {
      const s = await tcp(f.localPort!)
      const r = new HandshakeReader(s)
      s.write(Buffer.from([5, 1, 0]))
      expect([...(await r.read(2))]).toEqual([5, 0])
      const p = Buffer.alloc(2)
      p.writeUInt16BE(shaPort)
      s.write(Buffer.concat([Buffer.from([4, 1, 0, 1, 127, 0, 0, 1]), p]))
      expect(await closedAfter(r.release())).toBe(0)
    } finally {
      await f.close()
    }
  })

  it('forwardRemote to a refused local port: the server-side client sees its connection closed', async () => {
    const f = await ssh.forwardRemote({ remotePort: 0, localPort: dead })
    try {
      expect(await closedAfter(await tcp(f.remotePort!))).toBe(0)
      expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
    } finally {
      await f.close()
    }
  })
})

describe('a target that stops reading, then closes', () => {
  it('forwardLocal: the forwarded client is closed even while its bytes wait for the window', async () => {
    // the target reads nothing, so the SSH window fills, and then it hangs up
    const target = net.createServer((sock) => {
      sock.on('error', () => {})
      sock.pause()
      setTimeout(() => sock.destroy(), 1500)
    })
    servers.push(target)
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
    const f = await ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: (target.address() as net.AddressInfo).port })
    try {
      const client = await tcp(f.localPort!)
      client.on('error', () => {})
      client.resume()
      // a reset is expected (bytes were still unread): 'close' is the end either way
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
      const drained = (): Promise<void> => new Promise((resolve) => client.once('drain', resolve))
      const chunk = Buffer.alloc(MiB, 7)
      let written = 0
      const writing = (async () => {
        while (written < 256 * MiB && !client.destroyed) {
          written += chunk.length
          if (!client.write(chunk)) await Promise.race([drained(), closed])
        }
      })()
      await withTimeout(closed, 15_000, 'forwarded client closed after its target hung up')
      await writing
      // it stopped well short of everything: the window and the buffers on the way filled up
      expect(written).toBeLessThan(256 * MiB)
      expect((await ssh.exec('echo alive')).stdout.toString()).toBe('alive\n')
    } finally {
      await f.close()
    }
  }, 30_000)
})

describe('a connection lost mid-stream', () => {
  it('forwardLocal: the forwarded client is reset, never handed a clean end of a cut stream', async () => {
    // a target that streams until its client goes
    const streaming = net.createServer((c) => {
      c.on('error', () => {})
      const chunk = randomBytes(64 * 1024)
      const pump = (): void => { while (c.writable && c.write(chunk)); }
      c.on('drain', pump)
      pump()
    })
    servers.push(streaming)
    await new Promise<void>((r) => streaming.listen(0, '127.0.0.1', r))
    const c = await connect(connectOptions())
    c.on('error', () => {})
    const f = await c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: (streaming.address() as net.AddressInfo).port })
    // read by a process outside Node, which tells a reset from a clean end
    const reader = tcpEndReader({ connect: f.localPort! })
    await withTimeout(reader.ready, 10_000, 'bytes through the forward')
    // the server's process for this connection dies: the TCP connection ends under the client
    const pid = Number((await c.exec('echo $PPID')).stdout.toString().trim())
    expect(pid).toBeGreaterThan(1)
    process.kill(pid, 'SIGKILL')
    expect(await withTimeout(reader.ended, 10_000, 'the forwarded client hears of the loss')).toBe('reset')
    await c.close()
  })
})

describe('a server with AllowTcpForwarding no', () => {
  let strict: Sshd
  let c: SshClient
  beforeAll(async () => {
    strict = await startSshd({ config: ['AllowTcpForwarding no', 'AllowStreamLocalForwarding no'] })
    c = await connect({ host: strict.host, port: strict.port, username: strict.user, privateKeyPath: strict.userKey.path, hostKey: { knownHosts: strict.knownHostsFile } })
  })
  afterAll(async () => {
    await c?.close()
    await strict?.stop()
  })

  it('forwardRemote is a ForwardError that names the likely cause', async () => {
    const e = await rejection(c.forwardRemote({ remotePort: 0, localPort: shaPort }))
    expect(e).toBeInstanceOf(ForwardError)
    expect(e.code).toBe('ERR_SSH_FORWARD')
    expect(e.message).toMatch(/AllowTcpForwarding/)
    expect(String(e.spec)).toContain(String(shaPort))
  })

  it('forwardRemoteUnix is a ForwardError', async () => {
    const e = await rejection(c.forwardRemoteUnix({ remotePath: sockPath(remoteDir, 'denied'), localPort: shaPort }))
    expect(e).toBeInstanceOf(ForwardError)
    expect(e.message).toMatch(/AllowStreamLocalForwarding/)
  })

  it('forwardLocal listens, but each connection is refused by the server and closed', async () => {
    const f = await c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })
    try {
      expect(await closedAfter(await tcp(f.localPort!))).toBe(0)
      expect(await closedAfter(await tcp(f.localPort!))).toBe(0)
      expect(countLines(strict.log(), /refused local port forward|administratively prohibited|open failed/i)).toBeGreaterThan(0)
    } finally {
      await f.close()
    }
  })

  it('openTcp and openUnix are ChannelErrors (administratively-prohibited)', async () => {
    const tcpErr = await rejection(c.openTcp('127.0.0.1', shaPort))
    expect(tcpErr).toBeInstanceOf(ChannelError)
    expect(tcpErr.reason).toBe('administratively-prohibited')
    const unixErr = await rejection(c.openUnix(shaPath))
    expect(unixErr).toBeInstanceOf(ChannelError)
    // OpenSSH answers a refused direct-streamlocal with "connect failed", and logs why
    expect(['administratively-prohibited', 'connect-failed']).toContain(unixErr.reason)
    expect(countLines(strict.log(), /refused streamlocal port forward/)).toBeGreaterThan(0)
    expect((await c.exec('echo alive')).stdout.toString()).toBe('alive\n')
  })
})

describe('close()', () => {
  /** An open connection through a forward, proven live by a small exchange-free ping. */
  async function live(open: () => Promise<Duplex>): Promise<Duplex> {
    const s = await open()
    // ask for 3 bytes back without ending our side: the connection stays open afterwards
    const header = Buffer.alloc(24)
    randomBytes(16).copy(header)
    header.writeBigUInt64BE(3n, 16)
    s.write(header)
    const firstData = once(s, 'data') as Promise<Buffer[]>
    s.resume()
    const first = await withTimeout(firstData, 10_000, 'first bytes')
    expect(first[0].length).toBeGreaterThan(0)
    return s
  }

  it('forwardLocal: stops the listener and ends its active connections', async () => {
    const f = await ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })
    const s = await live(() => tcp(f.localPort!))
    const ended = closedAfter(s, 5000, 'active forwarded connection ended by close()')
    await f.close()
    await ended
    expect(await refused(() => tcp(f.localPort!))).toBe('ECONNREFUSED')
    await f.close() // twice is harmless
  })

  it('forwardLocalUnix: stops the listener, removes its socket, ends its connections', async () => {
    const localPath = sockPath(dir, 'closing')
    const f = await ssh.forwardLocalUnix({ localPath, remoteHost: '127.0.0.1', remotePort: shaPort })
    const s = await live(() => unix(localPath))
    const ended = closedAfter(s, 5000, 'active forwarded connection ended by close()')
    await f.close()
    await ended
    expect(existsSync(localPath)).toBe(false)
    expect(['ENOENT', 'ECONNREFUSED']).toContain(await refused(() => unix(localPath)))
  })

  it('forwardDynamic: stops the listener and ends its active connections', async () => {
    const f = await ssh.forwardDynamic()
    const s = await live(socksOpen(f, (p) => socks5(p, { ipv4: '127.0.0.1' }, shaPort), 0))
    const ended = closedAfter(s, 5000, 'active SOCKS connection ended by close()')
    await f.close()
    await ended
    expect(await refused(() => tcp(f.localPort!))).toBe('ECONNREFUSED')
  })

  it('forwardRemote: the server stops listening and active connections end', async () => {
    const f = await ssh.forwardRemote({ remotePort: 0, localPort: shaPort })
    const s = await live(() => tcp(f.remotePort!))
    const ended = closedAfter(s, 5000, 'active remote-forwarded connection ended by close()')
    await f.close()
    expect(await refused(() => tcp(f.remotePort!))).toBe('ECONNREFUSED')
    await ended
  })

  it('forwardRemoteUnix: the server stops listening and active connections end', async () => {
    const remotePath = sockPath(remoteDir, 'closing')
    const f = await ssh.forwardRemoteUnix({ remotePath, localPort: shaPort })
    const s = await live(() => unix(remotePath))
    const ended = closedAfter(s, 5000, 'active remote-forwarded connection ended by close()')
    await f.close()
    expect(['ENOENT', 'ECONNREFUSED']).toContain(await refused(() => unix(remotePath)))
    await ended
  })

  it('closing the client stops its forwards', async () => {
    const c = await connect(connectOptions())
    const local = await c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })
    const dyn = await c.forwardDynamic()
    const remote = await c.forwardRemote({ remotePort: 0, localPort: shaPort })
    const s = await live(() => tcp(local.localPort!))
    const ended = closedAfter(s, 5000, 'forwarded connection ended by the client closing')
    await c.close()
    await ended
    expect(await refused(() => tcp(local.localPort!))).toBe('ECONNREFUSED')
    expect(await refused(() => tcp(dyn.localPort!))).toBe('ECONNREFUSED')
    // the server's side goes with its session process, a moment after the disconnect
    await until(async () => (await tcp(remote.remotePort!).then((x) => { x.destroy(); return 'open' }, (e: { code?: string }) => String(e.code))) === 'ECONNREFUSED',
      5000, 'remote forward port closed with the connection')
    await local.close()
    await expect(c.forwardLocal({ remoteHost: '127.0.0.1', remotePort: shaPort })).rejects.toMatchObject({ code: 'ERR_SSH_DISCONNECTED' })
  })
})

describe('bad specs', () => {
  it('are ConfigErrors naming the option, before anything is sent', async () => {
    const cases: [string, () => Promise<unknown>, string][] = [
      ['localPort 70000', () => ssh.forwardLocal({ localPort: 70000, remoteHost: '127.0.0.1', remotePort: 22 }), 'localPort'],
      ['remotePort 70000', () => ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: 70000 }), 'remotePort'],
      ['remotePort 0', () => ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: 0 }), 'remotePort'],
      ['remotePort 1.5', () => ssh.forwardLocal({ remoteHost: '127.0.0.1', remotePort: 1.5 }), 'remotePort'],
      ['missing remoteHost', () => ssh.forwardLocal({ remotePort: 22 }), 'remoteHost'],
      ['empty remoteHost', () => ssh.forwardLocal({ remoteHost: '', remotePort: 22 }), 'remoteHost'],
      ['remotePath and remoteHost', () => ssh.forwardLocal({ remotePath: '/x', remoteHost: 'h', remotePort: 22 }), 'remotePath'],
      ['forwardLocalUnix without localPath', () => ssh.forwardLocalUnix({ remoteHost: '127.0.0.1', remotePort: 22 } as never), 'localPath'],
      ['forwardRemote remotePort 70000', () => ssh.forwardRemote({ remotePort: 70000, localPort: 22 }), 'remotePort'],
      ['forwardRemote without localPort', () => ssh.forwardRemote({ remotePort: 0 }), 'localPort'],
      ['forwardRemote localPort -1', () => ssh.forwardRemote({ remotePort: 0, localPort: -1 }), 'localPort'],
      ['forwardRemoteUnix without remotePath', () => ssh.forwardRemoteUnix({ localPort: 22 } as never), 'remotePath'],
      ['forwardDynamic localPort 65536', () => ssh.forwardDynamic({ localPort: 65536 }), 'localPort'],
      ['forwardDynamic localHost ""', () => ssh.forwardDynamic({ localHost: '' }), 'localHost'],
      ['openTcp port 0', () => ssh.openTcp('127.0.0.1', 0), 'port'],
      ['openTcp port 70000', () => ssh.openTcp('127.0.0.1', 70000), 'port'],
      ['openTcp empty host', () => ssh.openTcp('', 22), 'host'],
      ['openUnix empty path', () => ssh.openUnix(''), 'path'],
    ]
    for (const [what, call, option] of cases) {
      const e = await rejection(call())
      expect(e, what).toBeInstanceOf(ConfigError)
      expect(e.option, what).toBe(option)
    }
    await expect(ssh.forwardLocal(null as never)).rejects.toBeInstanceOf(ConfigError)
    expect(ssh.isClosed).toBe(false)
  })

  it('a local port already in use is a ForwardError', async () => {
    const taken = net.createServer().listen(0, '127.0.0.1')
    await once(taken, 'listening')
    try {
      const e = await rejection(ssh.forwardLocal({ localPort: (taken.address() as net.AddressInfo).port, remoteHost: '127.0.0.1', remotePort: shaPort }))
      expect(e).toBeInstanceOf(ForwardError)
      expect(e.message).toMatch(/cannot listen on 127\.0\.0\.1:\d+/)
    } finally {
      taken.close()
    }
  })
})

describe('edges of setting up and tearing down', () => {
  it('a SOCKS request for a host with a NUL fails that client only; the connection goes on', async () => {
    const c = await connect(connectOptions())
    const fwd = await c.forwardDynamic({ localPort: 0 })
    try {
      const s = net.connect(fwd.localPort!, '127.0.0.1')
      await once(s, 'connect')
      const replies: Buffer[] = []
      s.on('data', (d: Buffer) => replies.push(d))
      s.write(Buffer.from([5, 1, 0]))
      await until(() => Buffer.concat(replies).length >= 2, 5_000, 'SOCKS method reply')
      const name = Buffer.from('localhost\0x')
      s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([0, 80])]))
      await withTimeout(once(s, 'close'), 5_000, 'the SOCKS client is closed')
      const all = Buffer.concat(replies)
      expect(all[2]).toBe(5)
      expect(all[3]).not.toBe(0) // a failure reply, not success
      await expect(c.openTcp('localhost\0x', 80)).rejects.toBeInstanceOf(ConfigError)
      expect((await c.exec('echo still-here')).stdout.toString()).toBe('still-here\n')
      expect(c.isClosed).toBe(false)
    } finally {
      await fwd.close()
      await c.close()
    }
  })

  it('a remote forward on a fixed port takes the connections that arrive before its reply', async () => {
    const c = await connect(connectOptions())
    const hello = net.createServer((s) => { s.on('error', () => {}); s.end('hello') })
    await new Promise<void>((r) => hello.listen(0, '127.0.0.1', r))
    const port = await freeLoopbackPort()
    // keep connecting to the port the server is about to listen on, from before the request
    const results: string[] = []
    let stop = false
    const knock = async (): Promise<void> => {
      while (!stop && results.length < 3) {
        const got = await new Promise<string | null>((resolve) => {
          const s = net.connect(port, '127.0.0.1')
          const chunks: Buffer[] = []
          s.on('data', (d: Buffer) => chunks.push(d))
          s.on('error', () => resolve(null))
          s.on('close', () => resolve(chunks.length ? Buffer.concat(chunks).toString() : 'closed-empty'))
        })
        if (got !== null) results.push(got)
        else await new Promise((r) => setTimeout(r, 1))
      }
    }
    const knocking = knock()
    const fwd = await c.forwardRemote({ remoteHost: '127.0.0.1', remotePort: port, localHost: '127.0.0.1', localPort: (hello.address() as net.AddressInfo).port })
    try {
      await withTimeout(knocking, 10_000, 'three connections through the new forward')
      expect(results).toEqual(['hello', 'hello', 'hello'])
    } finally {
      stop = true
      await fwd.close()
      hello.close()
      await c.close()
    }
  })

  it('a forward still being set up when the connection closes is closed too', async () => {
    // the race goes either way from run to run: whichever way, nothing listens afterwards
    for (let i = 0; i < 10; i++) {
      const c = await connect(connectOptions())
      const port = await freeLoopbackPort()
      const pending = c.forwardLocal({ localPort: port, remoteHost: '127.0.0.1', remotePort: shaPort }).then((f) => f, (e: unknown) => e)
      await c.close()
      await pending
      const refused = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1')
        s.on('connect', () => { s.destroy(); resolve(false) })
        s.on('error', () => resolve(true))
      })
      expect(refused, `round ${i}`).toBe(true)
    }
  })
})
