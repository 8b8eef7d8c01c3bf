// Jump hosts (`proxyJump`, `ssh.jump`) through real OpenSSH servers on loopback. Each sshd
// logs its direct-tcpip requests (LogLevel DEBUG1), which shows the route really went
// through the hops; the sshd's forked children show which connections are still open.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'

import {
  ChannelError, ConfigError, ConnectError, connect, HostKeyError, ProxyError, SshClient,
  type ConnectOptions, type HostKeyInfo,
} from '../dist/cjs/index.js'
import { keygen, startSshd, type Sshd } from './fixtures/sshd.mjs'
import { countLines, escapeRe, freeLoopbackPort, rejection, sshdSessions, stateAfter, until, withTimeout } from './fixtures/helpers'

let hopA: Sshd // first hop, 127.0.0.1
let hopB: Sshd // second hop, 127.0.0.1
let target: Sshd // the target, on ::1 only
let dir: string
let allKnownHosts: string
let keyPath: string
let baseline: Map<Sshd, number>

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-jump-'))
  hopA = await startSshd()
  keyPath = hopA.userKey.path
  // one user key for every server, so hops can inherit the target's authentication
  hopB = await startSshd({ authorizedKeys: [hopA.userKey.publicKey] })
  target = await startSshd({ authorizedKeys: [hopA.userKey.publicKey], listen: ['::1'] })
  allKnownHosts = join(dir, 'known_hosts_all')
  writeFileSync(allKnownHosts, [...hopA.knownHostsLines, ...hopB.knownHostsLines, ...target.knownHostsLines].join('\n') + '\n')
  // the fixture's start-up probe leaves a short-lived child; settle before taking baselines
  await until(() => [hopA, hopB, target].every((s) => sshdSessions(s) === 0), 10_000, 'idle sshds')
  baseline = new Map([hopA, hopB, target].map((s) => [s, 0]))
})
afterAll(async () => {
  await Promise.all([hopA?.stop(), hopB?.stop(), target?.stop()])
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const targetOptions = (extra: Partial<ConnectOptions> = {}): ConnectOptions => ({
  host: '::1', port: target.port, username: target.user, privateKeyPath: keyPath,
  hostKey: { knownHosts: allKnownHosts }, connectTimeout: 15_000, ...extra,
})

/** Both hops in ProxyJump string form, with user names. */
const spec2 = (): string => `${hopA.user}@127.0.0.1:${hopA.port},${hopB.user}@127.0.0.1:${hopB.port}`

/** direct-tcpip requests `via` has served towards host:port (its DEBUG1 log). */
function directTcpip(via: Sshd, host: string, port: number): number {
  return countLines(via.log(), new RegExp(`server_request_direct_tcpip: originator \\S+ port \\d+, target ${escapeRe(host)} port ${port}$`))
}

/** 'Connection from' lines of an sshd (its start-up probe included). */
function connectionsTo(s: Sshd): number {
  return countLines(s.log(), /^Connection from /)
}

async function sessionsBackToBaseline(...servers: Sshd[]): Promise<void> {
  await until(() => servers.every((s) => sshdSessions(s) === baseline.get(s)), 10_000, 'hop connections closed',
    () => servers.map((s) => sshdSessions(s)))
}

async function targetWorks(ssh: SshClient): Promise<void> {
  const r = await ssh.exec('echo "$SSH_CONNECTION"', { timeout: 10_000 })
  // the target sees its own address: it is the ::1-only server
  expect(r.stdout.toString().trim()).toMatch(new RegExp(` ::1 ${target.port}$`))
}

describe('one hop', () => {
  it('hop given as options: the hop serves the direct-tcpip to the target, with the target\'s auth and policy', async () => {
    const before = { a: directTcpip(hopA, '::1', target.port), b: directTcpip(hopB, '::1', target.port) }
    const ssh = await connect({ ...targetOptions(), proxyJump: { host: hopA.host, port: hopA.port } })
    try {
      await targetWorks(ssh)
      expect(directTcpip(hopA, '::1', target.port)).toBe(before.a + 1)
      expect(directTcpip(hopB, '::1', target.port)).toBe(before.b)
      // while open: one session on the hop (the library's) and one on the target
      expect(sshdSessions(hopA)).toBe(1)
      expect(sshdSessions(target)).toBe(1)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, target)
  })

  it('ssh.jump(options) runs a connection through a connected client that stays open', async () => {
    const hop = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    try {
      const before = directTcpip(hopA, '::1', target.port)
      const t = await hop.jump(targetOptions())
      await targetWorks(t)
      expect(directTcpip(hopA, '::1', target.port)).toBe(before + 1)
      expect(t.hostKey?.fingerprint).toBe(target.hostKeys.ed25519.fingerprint)
      expect(hop.hostKey?.fingerprint).toBe(hopA.hostKeys.ed25519.fingerprint)
      await t.close()
      expect(t.isClosed).toBe(true)
      expect(await withTimeout(t.closed, 5000, 'target closed')).toBeUndefined()
      expect(hop.isClosed).toBe(false)
      expect(await stateAfter(hop.closed, 300)).toBe('pending')
      expect((await hop.exec('echo still-open')).stdout.toString()).toBe('still-open\n')
      await until(() => sshdSessions(target) === 0, 10_000, 'target session gone')
      expect(sshdSessions(hopA)).toBe(1)
    } finally {
      await hop.close()
    }
    await sessionsBackToBaseline(hopA, target)
  })
})

/** ACK nudges a server has seen (global requests without want-reply; its DEBUG1 log). */
const nudgesSeen = (s: Sshd): number => countLines(s.log(), /server_input_global_request: rtype nudge@ferrossh want_reply 0$/)

describe('ACK nudges', () => {
  it('a connection through a hop may nudge its server while a channel open is answered late; a direct one never does', async () => {
    const before = { hop: nudgesSeen(hopA), target: nudgesSeen(target) }
    const ssh = await connect({ ...targetOptions(), proxyJump: { host: hopA.host, port: hopA.port } })
    try {
      // the first command right after authentication: the open sshd answers late
      await targetWorks(ssh)
      for (let i = 0; i < 3; i++) expect((await ssh.exec(`echo ${i}`)).stdout.toString()).toBe(`${i}\n`)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, target)
    // the hop is our own TCP connection (TCP_QUICKACK): never nudged
    expect(nudgesSeen(hopA)).toBe(before.hop)
    const direct = await connect(targetOptions())
    try {
      await targetWorks(direct)
    } finally {
      await direct.close()
    }
    // at most ten per channel open (four here), and the direct connection sent none
    const throughHop = nudgesSeen(target) - before.target
    expect(throughHop).toBeLessThanOrEqual(10 * 4)
    await sessionsBackToBaseline(target)
    expect(nudgesSeen(target) - before.target).toBe(throughHop)
  })
})

describe('two hops', () => {
  it("the string form 'user@127.0.0.1:P1,user@127.0.0.1:P2' goes A → B → target", async () => {
    const before = { ab: directTcpip(hopA, '127.0.0.1', hopB.port), bt: directTcpip(hopB, '::1', target.port), at: directTcpip(hopA, '::1', target.port) }
    const spec = `${hopA.user}@127.0.0.1:${hopA.port},${hopB.user}@127.0.0.1:${hopB.port}`
    const ssh = await connect({ ...targetOptions(), proxyJump: spec })
    try {
      await targetWorks(ssh)
      expect(directTcpip(hopA, '127.0.0.1', hopB.port)).toBe(before.ab + 1)
      expect(directTcpip(hopB, '::1', target.port)).toBe(before.bt + 1)
      // A never connected to the target itself
      expect(directTcpip(hopA, '::1', target.port)).toBe(before.at)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it("string hops without 'user@' take the target's username, like every other inherited option", async () => {
    // the target's username is not the local user (root): a hop that fell back to the local
    // user would be refused, since AllowUsers admits only the test user
    const ssh = await connect({ ...targetOptions(), proxyJump: `127.0.0.1:${hopA.port},[127.0.0.1]:${hopB.port}` })
    try {
      await targetWorks(ssh)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('option objects per hop, each with its own authentication', async () => {
    const passwordLogins = countLines(hopA.log(), /^Accepted password for /)
    const keyLoginsB = countLines(hopB.log(), /^Accepted publickey for /)
    const ssh = await connect({
      ...targetOptions(),
      proxyJump: [
        { host: hopA.host, port: hopA.port, username: hopA.user, password: hopA.password, authOrder: ['password'] },
        { host: hopB.host, port: hopB.port, username: hopB.user, privateKeyPath: keyPath },
      ],
    })
    try {
      await targetWorks(ssh)
      expect(countLines(hopA.log(), /^Accepted password for /)).toBe(passwordLogins + 1)
      expect(countLines(hopB.log(), /^Accepted publickey for /)).toBe(keyLoginsB + 1)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('each hop\'s host key is checked under that hop\'s own name and port', async () => {
    const seen: HostKeyInfo[] = []
    const ssh = await connect({
      ...targetOptions({ hostKey: { verify: (k) => { seen.push(k); return true } } }),
      proxyJump: spec2(),
    })
    await ssh.close()
    expect(seen.map((k) => [k.host, k.port, k.fingerprint])).toEqual([
      ['127.0.0.1', hopA.port, hopA.hostKeys.ed25519.fingerprint],
      ['127.0.0.1', hopB.port, hopB.hostKeys.ed25519.fingerprint],
      ['::1', target.port, target.hostKeys.ed25519.fingerprint],
    ])
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('a wrong key for the middle hop fails with ProxyError { hop: 1, host } caused by a HostKeyError', async () => {
    const wrong = keygen(join(dir, 'not_hop_b'), 'ed25519', { comment: 'wrong' })
    const kh = join(dir, 'known_hosts_wrong_b')
    writeFileSync(kh, [
      ...hopA.knownHostsLines,
      `[127.0.0.1]:${hopB.port} ${wrong.publicKey.split(' ').slice(0, 2).join(' ')}`,
      ...target.knownHostsLines,
    ].join('\n') + '\n')
    const targetConnections = connectionsTo(target)
    const e = await rejection(connect({ ...targetOptions({ hostKey: { knownHosts: kh } }), proxyJump: spec2() }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.code).toBe('ERR_SSH_PROXY')
    expect(e).toMatchObject({ hop: 1, host: '127.0.0.1' })
    expect(e.message).toContain(String(hopB.port))
    const cause = e.cause as HostKeyError
    expect(cause).toBeInstanceOf(HostKeyError)
    expect(cause).toMatchObject({ reason: 'changed', host: '127.0.0.1', port: hopB.port, fingerprint: hopB.hostKeys.ed25519.fingerprint, expected: [wrong.fingerprint], file: kh, line: 2 })
    // the target was never contacted, and the first hop the library opened is closed again
    expect(connectionsTo(target)).toBe(targetConnections)
    await sessionsBackToBaseline(hopA, hopB)
  })

  it('a first hop missing from known_hosts is ProxyError { hop: 0 } with an unknown-key HostKeyError', async () => {
    const kh = join(dir, 'known_hosts_no_a')
    writeFileSync(kh, [...hopB.knownHostsLines, ...target.knownHostsLines].join('\n') + '\n')
    const e = await rejection(connect({ ...targetOptions({ hostKey: { knownHosts: kh } }), proxyJump: spec2() }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e).toMatchObject({ hop: 0, host: '127.0.0.1' })
    expect(e.cause).toBeInstanceOf(HostKeyError)
    expect(e.cause).toMatchObject({ reason: 'unknown', port: hopA.port })
    await sessionsBackToBaseline(hopA, hopB)
  })

  it('a wrong key for the target itself is a plain HostKeyError for the target', async () => {
    const wrong = keygen(join(dir, 'not_target'), 'ed25519', { comment: 'wrong' })
    const kh = join(dir, 'known_hosts_wrong_t')
    writeFileSync(kh, [...hopA.knownHostsLines, ...hopB.knownHostsLines, `[::1]:${target.port} ${wrong.publicKey.split(' ').slice(0, 2).join(' ')}`].join('\n') + '\n')
    const e = await rejection(connect({ ...targetOptions({ hostKey: { knownHosts: kh } }), proxyJump: spec2() }))
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e).toMatchObject({ reason: 'changed', host: '::1', port: target.port })
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('a pinned target fingerprint is not applied to the hops; hops give their own policy', async () => {
    const ssh = await connect({
      ...targetOptions({ hostKey: { fingerprint: target.hostKeys.ed25519.fingerprint } }),
      proxyJump: [
        { host: hopA.host, port: hopA.port, hostKey: { fingerprint: hopA.hostKeys.ed25519.fingerprint } },
        { host: hopB.host, port: hopB.port, hostKey: { knownHosts: hopB.knownHostsFile } },
      ],
    })
    await targetWorks(ssh)
    await ssh.close()
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('a refused first hop is ProxyError { hop: 0 } caused by a ConnectError', async () => {
    const dead = await freeLoopbackPort()
    const e = await rejection(connect({ ...targetOptions(), proxyJump: `${hopA.user}@127.0.0.1:${dead},${hopB.user}@127.0.0.1:${hopB.port}` }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e).toMatchObject({ hop: 0, host: '127.0.0.1' })
    expect(e.cause).toBeInstanceOf(ConnectError)
    expect(e.cause).toMatchObject({ errno: 'ECONNREFUSED' })
  })

  it('a connected SshClient after a hop this call opens is a ConfigError, and the opened hop is closed', async () => {
    const b = await connect({ host: '127.0.0.1', port: hopB.port, username: hopB.user, privateKeyPath: keyPath, hostKey: { knownHosts: allKnownHosts } })
    try {
      const e = await rejection(connect({ ...targetOptions(), proxyJump: [{ host: '127.0.0.1', port: hopA.port, username: hopA.user }, b] }))
      expect(e).toBeInstanceOf(ConfigError)
      expect((e as ConfigError).option).toBe('proxyJump')
      await sessionsBackToBaseline(hopA)
      expect(b.isClosed).toBe(false)
    } finally {
      await b.close()
    }
  })

  it("the target's AbortSignal ends a hop that is still connecting (a hop that never answers)", async () => {
    // a TCP server that accepts and never sends a banner
    const silent = createServer(() => {})
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    const port = (silent.address() as AddressInfo).port
    try {
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 300)
      const t0 = Date.now()
      const e = await rejection(withTimeout(connect({ ...targetOptions({ connectTimeout: 0 }), proxyJump: `${hopA.user}@127.0.0.1:${port}`, signal: ac.signal }), 10_000))
      expect((e as Error).name).toBe('AbortError')
      expect(Date.now() - t0).toBeLessThan(5_000)
    } finally {
      silent.close()
    }
  })

  it('a second hop the first cannot reach is ProxyError { hop: 0 }: the first hop failed to forward, caused by a connect-failed ChannelError', async () => {
    const dead = await freeLoopbackPort()
    const e = await rejection(connect({ ...targetOptions(), proxyJump: `${hopA.user}@127.0.0.1:${hopA.port},${hopA.user}@127.0.0.1:${dead}` }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e).toMatchObject({ hop: 0, host: '127.0.0.1' })
    expect(e.message).toBe(`jump host 0 (127.0.0.1:${hopA.port}) could not open a connection to 127.0.0.1:${dead}: connect-failed`)
    expect(e.cause).toBeInstanceOf(ChannelError)
    expect(e.cause).toMatchObject({ reason: 'connect-failed' })
    await sessionsBackToBaseline(hopA)
  })

  it('a target the last hop cannot reach is ProxyError naming the last hop', async () => {
    const dead = await freeLoopbackPort()
    const e = await rejection(connect({ ...targetOptions(), host: '127.0.0.1', port: dead, proxyJump: spec2() }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e).toMatchObject({ hop: 1, host: '127.0.0.1' })
    expect(e.message).toBe(`jump host 1 (127.0.0.1:${hopB.port}) could not open a connection to 127.0.0.1:${dead}: connect-failed`)
    expect(e.cause).toMatchObject({ reason: 'connect-failed' })
    await sessionsBackToBaseline(hopA, hopB)
  })

  it('a hop that forbids forwarding is named, whether a hop or the target is behind it', async () => {
    const strict = await startSshd({ authorizedKeys: [hopA.userKey.publicKey], config: ['AllowTcpForwarding no'] })
    try {
      const kh = join(dir, 'known_hosts_strict')
      writeFileSync(kh, [...strict.knownHostsLines, ...hopA.knownHostsLines, ...hopB.knownHostsLines, ...target.knownHostsLines].join('\n') + '\n')
      const at = (p: number) => `${strict.user}@127.0.0.1:${p}`
      const first = await rejection(connect({ ...targetOptions({ hostKey: { knownHosts: kh } }), proxyJump: `${at(strict.port)},${at(hopB.port)}` }))
      expect(first).toBeInstanceOf(ProxyError)
      expect(first).toMatchObject({ hop: 0, host: '127.0.0.1' })
      expect(first.message).toBe(`jump host 0 (127.0.0.1:${strict.port}) could not open a connection to 127.0.0.1:${hopB.port}: administratively-prohibited`)
      const last = await rejection(connect({ ...targetOptions({ hostKey: { knownHosts: kh } }), proxyJump: `${at(hopA.port)},${at(strict.port)}` }))
      expect(last).toBeInstanceOf(ProxyError)
      expect(last).toMatchObject({ hop: 1, host: '127.0.0.1' })
      expect(last.message).toBe(`jump host 1 (127.0.0.1:${strict.port}) could not open a connection to [::1]:${target.port}: administratively-prohibited`)
      expect(last.cause).toMatchObject({ reason: 'administratively-prohibited' })
    } finally {
      await strict.stop()
    }
    await sessionsBackToBaseline(hopA, hopB)
  })
})

describe('proxyJump and sshConfig inside hops and jump()', () => {
  it("a hop's own proxyJump is dialled before it: A → B → target", async () => {
    const before = { a: directTcpip(hopA, '127.0.0.1', hopB.port), b: directTcpip(hopB, '::1', target.port) }
    const ssh = await connect({ ...targetOptions(), proxyJump: [{ host: '127.0.0.1', port: hopB.port, proxyJump: `${hopA.user}@127.0.0.1:${hopA.port}` }] })
    try {
      await targetWorks(ssh)
      expect(directTcpip(hopA, '127.0.0.1', hopB.port)).toBe(before.a + 1)
      expect(directTcpip(hopB, '::1', target.port)).toBe(before.b + 1)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, hopB, target)
  })

  it('ssh.jump() with proxyJump runs through this connection, then the hops', async () => {
    const a = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    try {
      const before = { a: directTcpip(hopA, '127.0.0.1', hopB.port), b: directTcpip(hopB, '::1', target.port) }
      const t = await a.jump({ ...targetOptions(), proxyJump: `${hopB.user}@127.0.0.1:${hopB.port}` })
      await targetWorks(t)
      expect(directTcpip(hopA, '127.0.0.1', hopB.port)).toBe(before.a + 1)
      expect(directTcpip(hopB, '::1', target.port)).toBe(before.b + 1)
      await t.close()
      expect(a.isClosed).toBe(false)
      await sessionsBackToBaseline(hopB, target)
    } finally {
      await a.close()
    }
  })

  it('a hop that lists itself among its own jump hosts is a ConfigError', async () => {
    const loop: Partial<ConnectOptions> = { host: '127.0.0.1', port: hopA.port }
    loop.proxyJump = [loop]
    const e = await rejection(connect({ ...targetOptions(), proxyJump: [loop] }))
    expect(e).toBeInstanceOf(ConfigError)
    expect(e.option).toBe('proxyJump')
  })

  it('sshConfig is applied by ssh.jump() and by a hop given as options', async () => {
    const cfg = join(dir, 'ssh_config_aliases')
    const entry = (alias: string, host: string, port: number) =>
      `Host ${alias}\n  HostName ${host}\n  Port ${port}\n  User ${target.user}\n  IdentityFile ${keyPath}\n  UserKnownHostsFile ${allKnownHosts}\n  IdentityAgent none\n`
    writeFileSync(cfg, entry('tgt-alias', '::1', target.port) + entry('hopb-alias', '127.0.0.1', hopB.port))
    const a = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    try {
      const before = directTcpip(hopA, '::1', target.port)
      const t = await a.jump({ host: 'tgt-alias', sshConfig: cfg })
      await targetWorks(t)
      expect(directTcpip(hopA, '::1', target.port)).toBe(before + 1)
      await t.close()
    } finally {
      await a.close()
    }
    const before = directTcpip(hopB, '::1', target.port)
    const ssh = await connect({ ...targetOptions(), proxyJump: [{ host: 'hopb-alias', sshConfig: cfg }] })
    try {
      await targetWorks(ssh)
      expect(directTcpip(hopB, '::1', target.port)).toBe(before + 1)
    } finally {
      await ssh.close()
    }
    await sessionsBackToBaseline(hopA, hopB, target)
  })
})

describe('hop lifetimes', () => {
  it('a connected SshClient as a hop stays open after the target closes; the hop the library opened is closed', async () => {
    const mine = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    try {
      const before = directTcpip(hopA, '127.0.0.1', hopB.port)
      const ssh = await connect({ ...targetOptions(), proxyJump: [mine, { host: hopB.host, port: hopB.port }] })
      await targetWorks(ssh)
      // the route: my client → A → B → target
      expect(directTcpip(hopA, '127.0.0.1', hopB.port)).toBe(before + 1)
      expect([sshdSessions(hopA), sshdSessions(hopB), sshdSessions(target)]).toEqual([1, 1, 1])
      await ssh.close()
      expect(ssh.isClosed).toBe(true)
      expect(await withTimeout(ssh.closed, 5000, 'target closed')).toBeUndefined()
      // B's connection (opened by the library) goes; mine stays
      await sessionsBackToBaseline(hopB, target)
      expect(mine.isClosed).toBe(false)
      expect(await stateAfter(mine.closed, 300)).toBe('pending')
      expect(sshdSessions(hopA)).toBe(1)
      expect((await mine.exec('echo alive')).stdout.toString()).toBe('alive\n')
    } finally {
      await mine.close()
    }
    await sessionsBackToBaseline(hopA)
  })

  it('closing the target closes both hops it opened', async () => {
    const ssh = await connect({ ...targetOptions(), proxyJump: spec2() })
    await targetWorks(ssh)
    expect([sshdSessions(hopA), sshdSessions(hopB), sshdSessions(target)]).toEqual([1, 1, 1])
    const t = Date.now()
    await ssh.close()
    await sessionsBackToBaseline(hopA, hopB, target)
    expect(Date.now() - t).toBeLessThan(8000)
  })

  it('a target whose passed-in hop closes ends too', async () => {
    const hop = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    const ssh = await hop.jump(targetOptions())
    await targetWorks(ssh)
    await hop.close()
    await withTimeout(ssh.closed, 10_000, 'target closed after its hop')
    expect(ssh.isClosed).toBe(true)
    await expect(ssh.exec('true')).rejects.toMatchObject({ code: 'ERR_SSH_DISCONNECTED' })
    await sessionsBackToBaseline(hopA, target)
  })

  it('a closed client as a hop is a ProxyError before anything is contacted', async () => {
    const hop = await connect({ ...targetOptions(), host: hopA.host, port: hopA.port })
    await hop.close()
    const e = await rejection(connect({ ...targetOptions(), proxyJump: hop }))
    expect(e).toBeInstanceOf(ProxyError)
    expect(e).toMatchObject({ hop: 0 })
    await expect(hop.jump(targetOptions())).rejects.toMatchObject({ code: 'ERR_SSH_DISCONNECTED' })
  })
})

describe('jump options', () => {
  it("proxyJump 'none' connects directly, overriding the file's ProxyJump, as ssh -J none", async () => {
    const cfg = join(dir, 'cfg-jump-none')
    writeFileSync(cfg, `Host via-nowhere\n  HostName ::1\n  Port ${target.port}\n  User ${target.user}\n  IdentityFile ${keyPath}\n  UserKnownHostsFile ${allKnownHosts}\n  ProxyJump bastion.invalid\n`)
    for (const proxyJump of ['none', 'NONE']) {
      const ssh = await connect({ host: 'via-nowhere', sshConfig: cfg, proxyJump, connectTimeout: 15_000 })
      expect((await ssh.exec('echo direct')).stdout.toString()).toBe('direct\n')
      await ssh.close()
    }
    const ssh = await connect(targetOptions({ proxyJump: 'none' }))
    await ssh.close()
  })
  it('unreadable specs and conflicting options are ConfigErrors', async () => {
    const bad: Partial<ConnectOptions>[] = [
      { proxyJump: `127.0.0.1:70000` },
      { proxyJump: 'bastion:22:33' },
      { proxyJump: `${hopA.user}@127.0.0.1:${hopA.port},` },
      { proxyJump: '   ' },
      { proxyJump: '@127.0.0.1:22' },
      { proxyJump: [{ port: 22 } as Partial<ConnectOptions>] },
      { proxyJump: `127.0.0.1:${hopA.port}`, proxyCommand: 'nc %h %p' },
      { proxyJump: `127.0.0.1:${hopA.port}`, proxy: 'socks5://127.0.0.1:1080' },
    ]
    const contacted = connectionsTo(hopA)
    for (const extra of bad) {
      const e = await rejection(connect({ ...targetOptions(), ...extra } as ConnectOptions))
      expect(e, JSON.stringify(extra)).toBeInstanceOf(ConfigError)
      expect(e.option).toBe('proxyJump')
    }
    // nothing was dialled
    expect(connectionsTo(hopA)).toBe(contacted)
  })
})
