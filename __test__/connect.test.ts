import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { inspect } from 'node:util'

import { AbortError, AuthError, ConfigError, ConnectError, connect, DisconnectError, HostKeyError, NegotiationError, SshClient, TimeoutError } from '../dist/cjs/index.js'
import { keygen, startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let dir: string
let encryptedKey: string
const PASSPHRASE = 'correct horse battery staple'

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-connect-'))
  encryptedKey = keygen(join(dir, 'id_enc'), 'ed25519', { passphrase: PASSPHRASE }).publicKey
  const rsa = keygen(join(dir, 'id_rsa'), 'rsa', { bits: 2048 }).publicKey
  const pem = keygen(join(dir, 'id_pem'), 'ecdsa', { bits: 256, format: 'PEM' }).publicKey
  sshd = await startSshd({ authorizedKeys: [encryptedKey, rsa, pem], hostKeyTypes: ['ed25519', 'rsa'] })
})
afterAll(async () => { await sshd?.stop() })

const base = () => ({ host: sshd.host, port: sshd.port, username: sshd.user, hostKey: { knownHosts: sshd.knownHostsFile } })

async function rejects(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(() => null, (e: Error) => e)
  if (!r) throw new Error('expected a rejection')
  return r
}

describe('authentication', () => {
  it('with a private key file', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path })
    expect((await ssh.exec('id -un')).stdout.toString().trim()).toBe(sshd.user)
    await ssh.close()
  })
  it('with key text, rsa (rsa-sha2) and a PEM ecdsa key', async () => {
    for (const name of ['id_ed25519', 'id_rsa', 'id_pem']) {
      const file = name === 'id_ed25519' ? sshd.userKey.path : join(dir, name)
      const ssh = await connect({ ...base(), privateKey: readFileSync(file, 'utf8') })
      expect((await ssh.exec('true')).code).toBe(0)
      await ssh.close()
    }
  })
  it('with an encrypted key and its passphrase', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: join(dir, 'id_enc'), passphrase: PASSPHRASE })
    await ssh.close()
  })
  it('wrong passphrase is an AuthError that says so, without the passphrase', async () => {
    const e = await rejects(connect({ ...base(), privateKeyPath: join(dir, 'id_enc'), passphrase: 'nope-secret-123' }))
    expect(e).toBeInstanceOf(AuthError)
    expect(e.message).toMatch(/wrong passphrase/)
    expect(e.message + inspect(e)).not.toContain('nope-secret-123')
    const missing = await rejects(connect({ ...base(), privateKeyPath: join(dir, 'id_enc') }))
    expect(missing.message).toMatch(/no passphrase/)
  })
  it('with a password', async () => {
    const ssh = await connect({ ...base(), password: sshd.password })
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
    await ssh.close()
  })
  it('a wrong password lists the attempt and what the server allows, and never the password', async () => {
    const e = (await rejects(connect({ ...base(), password: 'hunter2-not-it' }))) as AuthError
    expect(e).toBeInstanceOf(AuthError)
    expect(e.code).toBe('ERR_SSH_AUTH')
    expect(e.attempts).toEqual([{ method: 'password', outcome: 'rejected', detail: null }])
    expect(e.allowed).toContain('publickey')
    expect(e.message + inspect(e) + JSON.stringify(e)).not.toContain('hunter2-not-it')
  })
  it('tries methods in order and goes on after a rejected key', async () => {
    const other = keygen(join(dir, 'id_unknown'), 'ed25519')
    const ssh = await connect({ ...base(), privateKeyPath: other.path, password: sshd.password })
    await ssh.close()
    const e = (await rejects(connect({ ...base(), privateKeyPath: other.path, password: 'bad', authOrder: ['password', 'publickey'] }))) as AuthError
    expect(e.attempts.map((a) => a.method)).toEqual(['password', 'publickey'])
    expect(e.attempts[1].detail).toContain(other.fingerprint)
  })
  it('garbage key text is a ConfigError before connecting', async () => {
    const e = await rejects(connect({ ...base(), privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n' }))
    expect(e).toBeInstanceOf(ConfigError)
  })
})

describe('host keys', () => {
  it('strict by default: a key missing from ~/.ssh/known_hosts is unknown', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ferrossh-home-'))
    const old = process.env.HOME
    process.env.HOME = home
    try {
      const e = (await rejects(connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path }))) as HostKeyError
      expect(e).toBeInstanceOf(HostKeyError)
      expect(e.reason).toBe('unknown')
      expect(e.fingerprint).toMatch(/^SHA256:/)
      expect(e.message).toContain(join(home, '.ssh', 'known_hosts'))
      mkdirSync(join(home, '.ssh'))
      writeFileSync(join(home, '.ssh', 'known_hosts'), readFileSync(sshd.knownHostsFile))
      const ssh = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path })
      await ssh.close()
    } finally {
      process.env.HOME = old
    }
  })
  it('a different key for a known host is changed, with file and line', async () => {
    const other = keygen(join(dir, 'fake_host'), 'ed25519')
    const kh = join(dir, 'kh_changed')
    writeFileSync(kh, `# comment\n[${sshd.host}]:${sshd.port} ${other.publicKey.split(' ').slice(0, 2).join(' ')}\n`)
    const e = (await rejects(connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: kh }, algorithms: { hostKey: ['ssh-ed25519'] } }))) as HostKeyError
    expect(e.reason).toBe('changed')
    expect(e.file).toBe(kh)
    expect(e.line).toBe(2)
    expect(e.expected).toEqual([other.fingerprint])
    expect(e.fingerprint).toBe(sshd.hostKeys.ed25519.fingerprint)
  })
  it('several key types for one host: the known one is negotiated, never "changed"', async () => {
    const kh = join(dir, 'kh_rsa_only')
    writeFileSync(kh, sshd.knownHostsLines.filter((l) => l.includes('ssh-rsa')).join('\n') + '\n')
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: kh } })
    expect(ssh.hostKey?.algorithm).toBe('ssh-rsa')
    await ssh.close()
  })
  it('pinned fingerprint', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { fingerprint: sshd.hostKeys.ed25519.fingerprint }, algorithms: { hostKey: ['ssh-ed25519'] } })
    expect(ssh.hostKey?.fingerprint).toBe(sshd.hostKeys.ed25519.fingerprint)
    await ssh.close()
    const e = (await rejects(connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { fingerprint: 'SHA256:' + 'A'.repeat(43) } }))) as HostKeyError
    expect(e.reason).toBe('rejected')
  })
  it('verify callback sees the key and decides', async () => {
    const seen: unknown[] = []
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, algorithms: { hostKey: ['ssh-ed25519'] }, hostKey: { verify: async (k) => { seen.push(k); return true } } })
    await ssh.close()
    expect(seen).toEqual([expect.objectContaining({ algorithm: 'ssh-ed25519', fingerprint: sshd.hostKeys.ed25519.fingerprint, port: sshd.port })])
    const no = (await rejects(connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { verify: () => false } }))) as HostKeyError
    expect(no.reason).toBe('rejected')
    const throws = await rejects(connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { verify: () => { throw new Error('x') } } }))
    expect(throws).toBeInstanceOf(HostKeyError)
  })
  it('acceptNew records an unknown key and then trusts it', async () => {
    const kh = join(dir, 'kh_tofu')
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: kh, acceptNew: true } })
    await ssh.close()
    expect(readFileSync(kh, 'utf8')).toContain(`[${sshd.host}]:${sshd.port} `)
    const again = await connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: kh } })
    await again.close()
  })
  it('insecure-accept-any only when asked', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, hostKey: 'insecure-accept-any' })
    await ssh.close()
  })
})

describe('connection set-up', () => {
  it('IPv6 loopback and the builder', async () => {
    const v6 = await startSshd({ listen: ['::1'] })
    try {
      const ssh = await SshClient.builder().host('::1').port(v6.port).user(v6.user).identityFile(v6.userKey.path).knownHosts(v6.knownHostsFile).connect()
      expect((await ssh.exec('echo v6')).stdout.toString()).toBe('v6\n')
      await ssh.close()
    } finally {
      await v6.stop()
    }
  })
  it('sock: SSH over a Duplex the caller connected', async () => {
    const sock = net.connect(sshd.port, sshd.host)
    await new Promise((r) => sock.once('connect', r))
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path, sock })
    expect((await ssh.exec('echo over-sock')).stdout.toString()).toBe('over-sock\n')
    await ssh.close()
    await new Promise((r) => (sock.destroyed || sock.writableEnded ? r(null) : sock.once('close', r)))
    // a stream that ends before the banner is a clean error
    const dead = net.connect(sshd.port, sshd.host)
    await new Promise((r) => dead.once('connect', r))
    dead.end()
    dead.destroy()
    await expect(connect({ ...base(), password: 'x', sock: dead, connectTimeout: 3000 })).rejects.toHaveProperty('code')
  })
  it('a refused port is a ConnectError with errno', async () => {
    const srv = net.createServer().listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    srv.close()
    const e = (await rejects(connect({ ...base(), port, password: 'x' }))) as ConnectError
    expect(e).toBeInstanceOf(ConnectError)
    expect(e.errno).toBe('ECONNREFUSED')
  })
  it('a server that never speaks times out in the handshake', async () => {
    const sockets: net.Socket[] = []
    const srv = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    const t = Date.now()
    const e = (await rejects(connect({ ...base(), port, password: 'x', connectTimeout: 300 }))) as TimeoutError
    expect(e).toBeInstanceOf(TimeoutError)
    expect(e.phase).toBe('handshake')
    expect(Date.now() - t).toBeLessThan(3000)
    sockets.forEach((s) => s.destroy())
    srv.close()
  })
  it('a peer that is not SSH is a DisconnectError with reason and description', async () => {
    const srv = net.createServer((s) => { s.on('error', () => {}); s.end('garbage without a newline') }).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    const e = await rejects(connect({ ...base(), port, password: 'x', connectTimeout: 5000 }))
    expect(e).toBeInstanceOf(DisconnectError)
    expect((e as DisconnectError).reason).toEqual(expect.any(String))
    expect((e as DisconnectError).description).toEqual(expect.any(String))
    expect((e as DisconnectError).description.length).toBeGreaterThan(0)
    srv.close()
  })
  it('a server speaking SSH 1 is refused at once, as ssh refuses it, not after the handshake timeout', async () => {
    const sockets: net.Socket[] = []
    const srv = net.createServer((s) => { sockets.push(s); s.on('error', () => {}); s.write('SSH-1.5-OldServer\r\n') }).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    const t = Date.now()
    const e = await rejects(connect({ ...base(), port, password: 'x', connectTimeout: 15_000 }))
    expect(Date.now() - t).toBeLessThan(3000)
    expect(e).toBeInstanceOf(DisconnectError)
    expect((e as DisconnectError).reason).toBe('protocol-error')
    expect((e as Error).message).toMatch(/another SSH protocol version \("SSH-1\.5-OldServer"\)/)
    sockets.forEach((s) => s.destroy())
    srv.close()
  })
  it('AbortSignal cancels a connect in progress', async () => {
    const sockets: net.Socket[] = []
    const srv = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    const ac = new AbortController()
    const reason = new Error('user went away')
    setTimeout(() => ac.abort(reason), 100)
    const e = await rejects(connect({ ...base(), port, password: 'x', signal: ac.signal }))
    expect(e).toBeInstanceOf(AbortError)
    expect(e.name).toBe('AbortError')
    // the signal's reason, as Node's own AbortErrors carry it
    expect((e as Error).cause).toBe(reason)
    const pre = await rejects(connect({ ...base(), password: 'x', signal: AbortSignal.abort() }))
    expect(pre.name).toBe('AbortError')
    sockets.forEach((s) => s.destroy())
    srv.close()
  })
  it('connects that time out or are aborted after a stalling server\'s banner close their sockets, direct and through a jump host', async () => {
    // a server that sends its version line and then nothing (overloaded, a tarpit): russh's
    // session task owns the socket from the banner on, and must end with the failed connect
    const open = new Set<net.Socket>()
    let accepted = 0
    const srv = net.createServer((s) => {
      accepted++
      open.add(s)
      s.on('error', () => {})
      s.on('close', () => open.delete(s))
      // read (and drop) what the client sends, or its FIN would never be seen
      s.resume()
      s.write('SSH-2.0-OpenSSH_9.2\r\n')
    }).listen(0, '127.0.0.1')
    await new Promise((r) => srv.once('listening', r))
    const port = (srv.address() as net.AddressInfo).port
    const hop = await connect({ ...base(), privateKeyPath: sshd.userKey.path })
    try {
      const names: string[] = []
      for (let i = 0; i < 8; i++) {
        const via = i >= 4 ? { proxyJump: [hop] } : {}
        const o = { ...base(), port, password: 'x', hostKey: 'insecure-accept-any' as const, ...via }
        if (i % 2) {
          const e = await rejects(connect({ ...o, connectTimeout: 300 }))
          names.push(`${e.name} ${(e as TimeoutError).phase}`)
        } else {
          const ac = new AbortController()
          setTimeout(() => ac.abort(), 300)
          names.push((await rejects(connect({ ...o, signal: ac.signal }))).name)
        }
      }
      expect(names).toEqual(Array(4).fill(['AbortError', 'TimeoutError handshake']).flat())
      expect(accepted).toBe(8)
      // each socket closes with its connect (sshd's own, for the jump host's channels), not at exit
      const until = Date.now() + 5000
      while (open.size && Date.now() < until) await new Promise((r) => setTimeout(r, 25))
      expect(open.size, `${open.size} of ${accepted} connections still open`).toBe(0)
      expect(hop.isClosed).toBe(false)
      expect((await hop.exec('echo hop')).stdout.toString()).toBe('hop\n')
    } finally {
      await hop.close()
      open.forEach((s) => s.destroy())
      srv.close()
    }
  })
  it('no common cipher is a NegotiationError naming the list and both sides', async () => {
    const only = await startSshd({ config: ['Ciphers aes256-ctr'] })
    try {
      const e = (await rejects(connect({ host: only.host, port: only.port, username: only.user, privateKeyPath: only.userKey.path, hostKey: { knownHosts: only.knownHostsFile }, algorithms: { cipher: ['aes128-gcm@openssh.com'] } }))) as NegotiationError
      expect(e).toBeInstanceOf(NegotiationError)
      expect(e.list).toBe('cipher')
      expect(e.ours).toEqual(['aes128-gcm@openssh.com'])
      expect(e.theirs).toEqual(['aes256-ctr'])
    } finally {
      await only.stop()
    }
  })
  it('reports negotiated algorithms, AES-GCM first by default', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path })
    expect(ssh.algorithms?.cipher).toMatch(/gcm|chacha20/)
    expect(ssh.algorithms?.kex).toBeTruthy()
    await ssh.close()
  })
  it('debug gives a protocol trace without secrets', async () => {
    const lines: string[] = []
    const ssh = await connect({ ...base(), privateKeyPath: join(dir, 'id_enc'), passphrase: PASSPHRASE, password: sshd.password, authOrder: ['password', 'publickey'], debug: (l) => lines.push(l) })
    await ssh.exec('echo top-secret-command-text')
    await ssh.close()
    const text = lines.join('\n')
    expect(text).toMatch(/connecting to 127\.0\.0\.1:\d+/)
    expect(text).toContain(`server host key: ssh-ed25519 ${sshd.hostKeys.ed25519.fingerprint}`)
    expect(text).toMatch(/kex: \S+ host key: ssh-ed25519 cipher: \S+/)
    expect(text).toContain('auth password: accepted')
    expect(text).toMatch(/channel \d+: exec \(\d+ bytes\)/)
    expect(text).toContain('connection closed')
    for (const secret of [sshd.password, PASSPHRASE, 'top-secret-command-text']) expect(text).not.toContain(secret)
    await expect(connect({ ...base(), debug: 'loud' as never })).rejects.toBeInstanceOf(ConfigError)
  })
  it('close() resolves closed with no error and later calls fail cleanly', async () => {
    const ssh = await connect({ ...base(), privateKeyPath: sshd.userKey.path })
    const events: unknown[] = []
    ssh.on('close', (e) => events.push(e))
    await ssh.close()
    expect(await ssh.closed).toBeUndefined()
    expect(events).toEqual([undefined])
    await expect(ssh.exec('true')).rejects.toMatchObject({ code: 'ERR_SSH_DISCONNECTED' })
    await ssh.close()
  })
})
