import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, constants, copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { AbortError, ConfigError, connect, generateKey, HostKeyError, KnownHosts, parseKey, ProxyError, TimeoutError } from '../dist/cjs/index.js'
import { rsaKeyFromPrimes } from './fixtures/helpers'
import { keygen, startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let certSshd: Sshd
let dir: string
let ca: { path: string; publicKey: string }
let certifiedKey: { path: string; publicKey: string }

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-kh-'))
  sshd = await startSshd({ hostKeyTypes: ['ed25519', 'ecdsa', 'rsa'] })
  // a server with a host certificate signed by our CA
  ca = keygen(join(dir, 'host_ca'), 'ed25519', { comment: 'host-ca' })
  const hostKey = keygen(join(dir, 'certified_host'), 'ed25519', { comment: 'certified' })
  certifiedKey = hostKey
  execFileSync('ssh-keygen', ['-q', '-s', ca.path, '-h', '-I', 'test-host', '-n', '127.0.0.1,localhost', '-V', '-5m:+1h', hostKey.path + '.pub'])
  certSshd = await startSshd({ config: [`HostKey ${hostKey.path}`, `HostCertificate ${hostKey.path}-cert.pub`] })
})
afterAll(async () => {
  await sshd?.stop()
  await certSshd?.stop()
})

const login = (s: Sshd) => ({ host: s.host, port: s.port, username: s.user, privateKeyPath: s.userKey.path })

describe('known_hosts policy on real connections', () => {
  it('hashed known_hosts (ssh-keygen -H) is matched', async () => {
    const kh = join(dir, 'hashed')
    copyFileSync(sshd.knownHostsFile, kh)
    execFileSync('ssh-keygen', ['-q', '-H', '-f', kh])
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/)
    const ssh = await connect({ ...login(sshd), hostKey: { knownHosts: kh } })
    await ssh.close()
  })
  it('wildcard and negated patterns follow ssh', async () => {
    const [type, blob] = sshd.hostKeys.ed25519.publicKey.split(' ')
    const ok = join(dir, 'wild')
    writeFileSync(ok, `[127.0.0.*]:${sshd.port} ${type} ${blob}\n`)
    await (await connect({ ...login(sshd), hostKey: { knownHosts: ok }, algorithms: { hostKey: ['ssh-ed25519'] } })).close()
    const neg = join(dir, 'negated')
    writeFileSync(neg, `[127.0.0.*]:${sshd.port},![127.0.0.1]:${sshd.port} ${type} ${blob}\n`)
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: neg } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('unknown')
  })
  it('@revoked refuses the key', async () => {
    const [type, blob] = sshd.hostKeys.ed25519.publicKey.split(' ')
    const kh = join(dir, 'revoked')
    writeFileSync(kh, `@revoked * ${type} ${blob}\n${sshd.knownHostsLines.join('\n')}\n`)
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: kh }, algorithms: { hostKey: ['ssh-ed25519'] } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e).toMatchObject({ reason: 'revoked', file: kh, line: 1 })
  })
  it('a host known with several key types connects with whichever is known', async () => {
    for (const t of ['ecdsa', 'rsa', 'ed25519']) {
      const kh = join(dir, `only-${t}`)
      const prefix = { ecdsa: 'ecdsa-sha2', rsa: 'ssh-rsa', ed25519: 'ssh-ed25519' }[t]!
      writeFileSync(kh, sshd.knownHostsLines.filter((l) => l.split(' ')[1].startsWith(prefix)).join('\n') + '\n')
      const ssh = await connect({ ...login(sshd), hostKey: { knownHosts: kh } })
      expect(ssh.hostKey?.algorithm.startsWith(prefix)).toBe(true)
      await ssh.close()
    }
  })
  it('a key of a type the file does not have, for a known host, is "changed" and never added on first use', async () => {
    const kh = join(dir, 'ed-only-tofu')
    writeFileSync(kh, sshd.knownHostsLines.filter((l) => l.includes('ssh-ed25519')).join('\n') + '\n')
    const before = readFileSync(kh, 'utf8')
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: kh, acceptNew: true }, algorithms: { hostKey: ['ecdsa-sha2-nistp256'] } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('changed')
    expect(readFileSync(kh, 'utf8')).toBe(before)
  })
  it('@cert-authority accepts a host certificate signed by that CA', async () => {
    const kh = join(dir, 'ca')
    writeFileSync(kh, `@cert-authority [127.0.0.1]:${certSshd.port} ${ca.publicKey}\n`)
    const ssh = await connect({ ...login(certSshd), hostKey: { knownHosts: kh } })
    expect((await ssh.exec('echo via-cert')).stdout.toString()).toBe('via-cert\n')
    await ssh.close()
    const other = keygen(join(dir, 'other_ca'), 'ed25519')
    const wrong = join(dir, 'wrong-ca')
    writeFileSync(wrong, `@cert-authority [127.0.0.1]:${certSshd.port} ${other.publicKey}\n`)
    await expect(connect({ ...login(certSshd), hostKey: { knownHosts: wrong } })).rejects.toBeInstanceOf(HostKeyError)
    const revokedCa = join(dir, 'revoked-ca')
    writeFileSync(revokedCa, `@cert-authority [127.0.0.1]:${certSshd.port} ${ca.publicKey}\n@revoked * ${ca.publicKey}\n`)
    await expect(connect({ ...login(certSshd), hostKey: { knownHosts: revokedCa } })).rejects.toBeInstanceOf(HostKeyError)
  })
  it('@cert-authority for the bare host name is trusted on another port, as OpenSSH checks without the port', async () => {
    const kh = join(dir, 'ca-bare')
    writeFileSync(kh, `@cert-authority 127.0.0.1 ${ca.publicKey}\n`)
    const ssh = await connect({ ...login(certSshd), hostKey: { knownHosts: kh } })
    expect((await ssh.exec('echo bare-ca')).stdout.toString()).toBe('bare-ca\n')
    await ssh.close()
  })
  it('a certificate from a CA not trusted for the host falls back to its plain key, as OpenSSH does', async () => {
    const other = keygen(join(dir, 'other_ca2'), 'ed25519')
    const [type, blob] = certifiedKey.publicKey.split(' ')
    // the CA line makes the client ask for the certificate; it names another CA
    const kh = join(dir, 'wrong-ca-plain')
    writeFileSync(kh, `@cert-authority [127.0.0.1]:${certSshd.port} ${other.publicKey}\n[127.0.0.1]:${certSshd.port} ${type} ${blob}\n`)
    const ssh = await connect({ ...login(certSshd), hostKey: { knownHosts: kh } })
    expect((await ssh.exec('echo plain')).stdout.toString()).toBe('plain\n')
    await ssh.close()
    // the plain key unknown: refused as unknown; the plain key of another: changed
    const none = join(dir, 'wrong-ca-none')
    writeFileSync(none, `@cert-authority [127.0.0.1]:${certSshd.port} ${other.publicKey}\n`)
    expect(await connect({ ...login(certSshd), hostKey: { knownHosts: none } }).catch((x) => x)).toMatchObject({ reason: 'unknown' })
    const changed = join(dir, 'wrong-ca-changed')
    writeFileSync(changed, `@cert-authority [127.0.0.1]:${certSshd.port} ${other.publicKey}\n[127.0.0.1]:${certSshd.port} ${other.publicKey}\n`)
    expect(await connect({ ...login(certSshd), hostKey: { knownHosts: changed } }).catch((x) => x)).toMatchObject({ reason: 'changed' })
    // a revoked certified key is refused even with its plain key listed
    const revoked = join(dir, 'wrong-ca-revoked')
    writeFileSync(revoked, `@cert-authority [127.0.0.1]:${certSshd.port} ${other.publicKey}\n[127.0.0.1]:${certSshd.port} ${type} ${blob}\n@revoked * ${type} ${blob}\n`)
    expect(await connect({ ...login(certSshd), hostKey: { knownHosts: revoked } }).catch((x) => x)).toBeInstanceOf(HostKeyError)
  })
  it('a certificate from the trusted CA that is not issued for the name is not trusted; its plain key is checked, as OpenSSH does', async () => {
    const [type, blob] = certifiedKey.publicKey.split(' ')
    // looked up as 'db' (an alias): the CA is trusted for it, the certificate names 127.0.0.1 and localhost
    const kh = join(dir, 'ca-wrong-name')
    writeFileSync(kh, `@cert-authority db ${ca.publicKey}\n`)
    const e = await connect({ ...login(certSshd), hostKey: { knownHosts: kh, alias: 'db' } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('unknown')
    expect(e.message).toContain('was not trusted (it is issued for "127.0.0.1", "localhost", not for "db"')
    const plain = join(dir, 'ca-wrong-name-plain')
    writeFileSync(plain, `@cert-authority db ${ca.publicKey}\ndb ${type} ${blob}\n`)
    const ssh = await connect({ ...login(certSshd), hostKey: { knownHosts: plain, alias: 'db' } })
    await ssh.close()
  })
  it('trust on first use from several processes at once never corrupts the file', async () => {
    const kh = join(dir, 'tofu-race')
    const hashedKh = join(dir, 'tofu-race-hashed')
    const script = `const { connect } = require(${JSON.stringify(resolve(__dirname, '../dist/cjs/index.js'))});
      (async () => { const o = JSON.parse(process.argv[1]); const s = await connect(o); await s.close() })().catch((e) => { console.error(e.message); process.exit(1) })`
    const run = (file: string, hash: boolean) => new Promise<number>((res) => {
      const o = { ...login(sshd), hostKey: { knownHosts: file, acceptNew: true, hash } }
      spawn(process.execPath, ['-e', script, JSON.stringify(o)], { stdio: 'inherit' }).on('exit', (c) => res(c ?? 1))
    })
    const codes = await Promise.all([...Array(8)].map((_, i) => run(i % 2 ? kh : hashedKh, i % 2 === 0)))
    expect(codes).toEqual(Array(8).fill(0))
    for (const f of [kh, hashedKh]) {
      const text = readFileSync(f, 'utf8')
      const parsed = KnownHosts.parse(text, f)
      expect(parsed.issues).toEqual([])
      expect(text.endsWith('\n')).toBe(true)
      expect(parsed.check('127.0.0.1', sshd.port, sshd.hostKeys.ed25519.publicKey).status).toBe('match')
    }
    expect(readFileSync(hashedKh, 'utf8')).toMatch(/^\|1\|/)
  }, 60_000)
})

describe('known_hosts I/O stays off the runtime thread', () => {
  // every connection shares one native runtime thread: a known_hosts read or lock that blocks
  // may hold up that connect only, which its connectTimeout and signal still end on time
  async function execTime(ssh: Awaited<ReturnType<typeof connect>>) {
    const t = Date.now()
    expect((await ssh.exec('echo fast')).stdout.toString()).toBe('fast\n')
    return Date.now() - t
  }
  it('a known_hosts locked by another writer: acceptNew times out on time, gives up, other connections run', async () => {
    const other = await connect({ ...login(sshd), hostKey: 'insecure-accept-any' })
    const kh = join(dir, 'held-lock')
    writeFileSync(kh, '')
    // another process holds the lock ferrossh's own appends take, for 4 s
    const holder = spawn('flock', ['-x', kh, '-c', 'echo held; sleep 4'], { stdio: ['ignore', 'pipe', 'ignore'] })
    await new Promise((r) => holder.stdout.once('data', r))
    const t0 = Date.now()
    const pending = connect({ ...login(sshd), hostKey: { knownHosts: kh, acceptNew: true }, connectTimeout: 1500 }).catch((x) => x)
    await new Promise((r) => setTimeout(r, 500))
    expect(await execTime(other)).toBeLessThan(1000)
    const e = await pending
    expect(e).toBeInstanceOf(TimeoutError)
    expect(Date.now() - t0).toBeLessThan(3000)
    // once the lock is free, the connect that was given up writes nothing
    await new Promise((r) => holder.once('exit', r))
    await new Promise((r) => setTimeout(r, 300))
    expect(readFileSync(kh, 'utf8')).toBe('')
    // and a new one records the key
    const added = await connect({ ...login(sshd), hostKey: { knownHosts: kh, acceptNew: true } })
    expect(KnownHosts.parse(readFileSync(kh, 'utf8'), kh).check('127.0.0.1', sshd.port, added.hostKey!.publicKey).status).toBe('match')
    await added.close()
    await other.close()
  }, 20_000)
  it('a known_hosts whose read blocks (a FIFO): connectTimeout and abort end the connect on time, other connections run', async () => {
    const other = await connect({ ...login(sshd), hostKey: 'insecure-accept-any' })
    const fifo = join(dir, 'kh-fifo')
    execFileSync('mkfifo', [fifo])
    try {
      let t0 = Date.now()
      const timedOut = connect({ ...login(sshd), hostKey: { knownHosts: fifo }, connectTimeout: 1000 }).catch((x) => x)
      await new Promise((r) => setTimeout(r, 300))
      expect(await execTime(other)).toBeLessThan(700)
      expect(await timedOut).toBeInstanceOf(TimeoutError)
      expect(Date.now() - t0).toBeLessThan(2500)
      t0 = Date.now()
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 500)
      const aborted = await connect({ ...login(sshd), hostKey: { knownHosts: fifo }, signal: ac.signal }).catch((x) => x)
      expect(aborted).toBeInstanceOf(AbortError)
      expect(Date.now() - t0).toBeLessThan(2000)
      expect(await execTime(other)).toBeLessThan(700)
    } finally {
      // let the readers still waiting on the FIFO see its end
      for (let i = 0; i < 5; i++) {
        try { closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)) } catch { /* no reader left */ }
        await new Promise((r) => setTimeout(r, 50))
      }
      await other.close()
    }
  }, 20_000)
})

describe('host certificates that OpenSSH does not trust', () => {
  // each server presents a certificate from a trusted CA that ssh's check_host_cert refuses;
  // ssh then checks the certified key as a plain key, and so must we
  const servers: Record<string, Sshd> = {}
  let hostKey: { path: string; publicKey: string }
  let edCa: { path: string; publicKey: string }
  let rsaCa: { path: string; publicKey: string }
  beforeAll(async () => {
    hostKey = keygen(join(dir, 'refused_host'), 'ed25519')
    edCa = keygen(join(dir, 'refused_ed_ca'), 'ed25519')
    rsaCa = keygen(join(dir, 'refused_rsa_ca'), 'rsa', { bits: 2048 })
    const certs: Record<string, string[]> = {
      critical: ['-s', edCa.path, '-O', 'critical:force-command=/bin/true', '-n', '127.0.0.1'],
      sha1: ['-s', rsaCa.path, '-t', 'ssh-rsa', '-n', '127.0.0.1'],
      sha512: ['-s', rsaCa.path, '-t', 'rsa-sha2-512', '-n', '127.0.0.1'],
      upper: ['-s', edCa.path, '-n', 'DB'],
      lower: ['-s', edCa.path, '-n', 'db'],
    }
    for (const [name, args] of Object.entries(certs)) {
      copyFileSync(hostKey.path + '.pub', join(dir, `${name}.pub`))
      execFileSync('ssh-keygen', ['-q', ...args, '-h', '-I', name, join(dir, `${name}.pub`)])
      servers[name] = await startSshd({ hostKeyTypes: [], config: [`HostKey ${hostKey.path}`, `HostCertificate ${join(dir, `${name}-cert.pub`)}`] })
    }
  })
  afterAll(async () => {
    for (const s of Object.values(servers)) await s.stop()
  })
  const cas = () => `@cert-authority * ${edCa.publicKey}\n@cert-authority * ${rsaCa.publicKey}\n`
  async function refused(name: string, alias?: string) {
    const kh = join(dir, `refused-${name}`)
    writeFileSync(kh, cas())
    const trace: string[] = []
    const e = await connect({ ...login(servers[name]), hostKey: { knownHosts: kh, alias }, debug: (l: string) => trace.push(l) }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('unknown')
    expect(trace.some((l) => l.startsWith('host certificate not trusted'))).toBe(true)
    // with the certified key listed as a plain key, the connection goes ahead as with ssh
    const [type, blob] = hostKey.publicKey.split(' ')
    writeFileSync(kh, cas() + `${alias ?? `[127.0.0.1]:${servers[name].port}`} ${type} ${blob}\n`)
    await (await connect({ ...login(servers[name]), hostKey: { knownHosts: kh, alias } })).close()
    return e.message as string
  }
  it('a critical option (host certificates define none)', async () => {
    expect(await refused('critical')).toContain('it carries the critical option(s) "force-command"')
  })
  it('an ssh-rsa (SHA-1) signature by an RSA CA; rsa-sha2-512 from the same CA is trusted', async () => {
    expect(await refused('sha1')).toContain('its CA signed it with ssh-rsa (SHA-1)')
    const kh = join(dir, 'trusted-sha512')
    writeFileSync(kh, cas())
    await (await connect({ ...login(servers.sha512), hostKey: { knownHosts: kh } })).close()
  })
  it('principals are compared exactly with the lowercased name, as ssh compares them', async () => {
    expect(await refused('upper', 'db')).toContain('it is issued for "DB", not for "db"')
    const kh = join(dir, 'trusted-lower')
    writeFileSync(kh, cas())
    // ssh lowercases the name (and HostKeyAlias) it checks: an uppercase alias matches "db"
    await (await connect({ ...login(servers.lower), hostKey: { knownHosts: kh, alias: 'DB' } })).close()
  })
})

describe('hostKey.alias (HostKeyAlias)', () => {
  it('looks the key up under the alias only, not under the host and port', async () => {
    const [type, blob] = sshd.hostKeys.ed25519.publicKey.split(' ')
    const kh = join(dir, 'alias')
    writeFileSync(kh, `db-primary ${type} ${blob}\n`)
    const hostKey = { knownHosts: kh, alias: 'db-primary' }
    const ssh = await connect({ ...login(sshd), hostKey, algorithms: { hostKey: ['ssh-ed25519'] } })
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
    await ssh.close()
    // without the alias the same file knows nothing of 127.0.0.1:port
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: kh } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('unknown')
    // and an entry for the real host and port does not count for an alias
    const real = join(dir, 'alias-real')
    writeFileSync(real, `${sshd.knownHostsLines.join('\n')}\n`)
    const e2 = await connect({ ...login(sshd), hostKey: { knownHosts: real, alias: 'db-primary' } }).catch((x) => x)
    expect(e2).toBeInstanceOf(HostKeyError)
    expect(e2.reason).toBe('unknown')
    expect(e2.message).toContain('db-primary')
  })
  it('a changed key under the alias is refused; acceptNew records the alias, without a port', async () => {
    const [type] = sshd.hostKeys.ed25519.publicKey.split(' ')
    const other = generateKey({ type: 'ed25519' }).publicKey.split(' ')[1]
    const kh = join(dir, 'alias-changed')
    writeFileSync(kh, `db-primary ${type} ${other}\n`)
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: kh, alias: 'db-primary', acceptNew: true }, algorithms: { hostKey: ['ssh-ed25519'] } }).catch((x) => x)
    expect(e).toBeInstanceOf(HostKeyError)
    expect(e.reason).toBe('changed')
    const fresh = join(dir, 'alias-new')
    await (await connect({ ...login(sshd), hostKey: { knownHosts: fresh, alias: 'Replica-2', acceptNew: true }, algorithms: { hostKey: ['ssh-ed25519'] } })).close()
    const text = readFileSync(fresh, 'utf8')
    expect(text).toMatch(/^replica-2 ssh-ed25519 /i)
    expect(text).not.toContain(String(sshd.port))
    expect(KnownHosts.parse(text, fresh).check('replica-2', 22, sshd.hostKeys.ed25519.publicKey).status).toBe('match')
  })
  it('HostKeyAlias in ssh_config is used; a proxyJump hop does not take the alias', async () => {
    const [type, blob] = sshd.hostKeys.ed25519.publicKey.split(' ')
    const kh = join(dir, 'alias-config-kh')
    // the alias names the target; the hop (the same sshd) is found under its own name
    writeFileSync(kh, `db-primary ${type} ${blob}\n${sshd.knownHostsLines.join('\n')}\n`)
    const cfg = join(dir, 'alias-config')
    writeFileSync(cfg, `Host db\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKey.path}\n  HostKeyAlias db-primary\n  UserKnownHostsFile ${kh}\n  GlobalKnownHostsFile none\n  HostKeyAlgorithms ssh-ed25519\n`)
    const ssh = await connect({ host: 'db', sshConfig: cfg })
    expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
    await ssh.close()
    const viaHop = await connect({ host: 'db', sshConfig: cfg, proxyJump: `${sshd.user}@${sshd.host}:${sshd.port}` })
    expect((await viaHop.exec('echo hop')).stdout.toString()).toBe('hop\n')
    await viaHop.close()
    // the alias kept for the hop would have made it unknown there
    const onlyAlias = join(dir, 'alias-only-kh')
    writeFileSync(onlyAlias, `db-primary ${type} ${blob}\n`)
    const e = await connect({ ...login(sshd), hostKey: { knownHosts: onlyAlias, alias: 'db-primary' }, proxyJump: `${sshd.user}@${sshd.host}:${sshd.port}`, algorithms: { hostKey: ['ssh-ed25519'] } }).catch((x) => x)
    expect(e).toBeInstanceOf(ProxyError)
    expect(e.hop).toBe(0)
    expect(e.cause).toBeInstanceOf(HostKeyError)
    expect(e.cause.reason).toBe('unknown')
  })
  it('UserKnownHostsFile none and GlobalKnownHostsFile none name no file: every key is unknown, and accept-new records nothing, as ssh', async () => {
    const work = mkdtempSync(join(tmpdir(), 'ferrossh-kh-none-'))
    const cfg = join(dir, 'kh-none-config')
    writeFileSync(cfg, `Host db\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKey.path}\n  UserKnownHostsFile none\n  GlobalKnownHostsFile none\n  StrictHostKeyChecking accept-new\n`)
    const cwd = process.cwd()
    process.chdir(work)
    try {
      for (let i = 0; i < 2; i++) {
        const e = await connect({ host: 'db', sshConfig: cfg, connectTimeout: 5000 }).catch((x) => x)
        expect(e).toBeInstanceOf(HostKeyError)
        expect(e.reason).toBe('unknown')
        expect(existsSync(join(work, 'none'))).toBe(false)
      }
      // with only the user file none, a global file is read but never written
      const global = join(dir, 'kh-none-global')
      writeFileSync(global, '')
      writeFileSync(cfg, `Host db\n  HostName ${sshd.host}\n  Port ${sshd.port}\n  User ${sshd.user}\n  IdentityFile ${sshd.userKey.path}\n  UserKnownHostsFile none\n  GlobalKnownHostsFile ${global}\n  StrictHostKeyChecking accept-new\n`)
      await expect(connect({ host: 'db', sshConfig: cfg, connectTimeout: 5000 })).rejects.toMatchObject({ reason: 'unknown' })
      expect(readFileSync(global, 'utf8')).toBe('')
      writeFileSync(global, sshd.knownHostsLines.join('\n') + '\n')
      const ssh = await connect({ host: 'db', sshConfig: cfg, connectTimeout: 5000 })
      await ssh.close()
    } finally {
      process.chdir(cwd)
    }
  })
  it('a bad alias is a ConfigError', async () => {
    for (const alias of ['', 'a b', 'a,b', 'a\nb', 'x'.repeat(1025), 42, {}]) {
      const e = await connect({ ...login(sshd), hostKey: { knownHosts: join(dir, 'none'), alias: alias as string } }).catch((x) => x)
      expect(e).toBeInstanceOf(ConfigError)
      expect(e.message).toContain('hostKey.alias')
    }
  })
})

describe('KnownHosts class', () => {
  it('agrees with ssh-keygen -F on lookups', () => {
    const file = join(dir, 'corpus')
    const k1 = keygen(join(dir, 'k1'), 'ed25519').publicKey.split(' ').slice(0, 2).join(' ')
    const k2 = keygen(join(dir, 'k2'), 'ecdsa').publicKey.split(' ').slice(0, 2).join(' ')
    writeFileSync(file, ['# corpus', `web*.example.com,!web9.example.com ${k1}`, `[db.example.com]:2222 ${k2}`, `10.0.0.? ${k1}`, 'garbage line', ''].join('\n'))
    const kh = KnownHosts.loadSync(file)
    expect(kh.issues).toEqual([expect.objectContaining({ line: 5 })])
    for (const [host, port] of [['web1.example.com', 22], ['web9.example.com', 22], ['db.example.com', 2222], ['db.example.com', 22], ['10.0.0.7', 22], ['10.0.0.17', 22]] as const) {
      const name = port === 22 ? host : `[${host}]:${port}`
      let lines: number[] = []
      try {
        const out = execFileSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' })
        lines = [...out.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]))
      } catch {
        lines = []
      }
      expect(kh.lookup(host, port).map((e) => e.line), name).toEqual(lines)
    }
  })
  it('add, load and loadSync read ~ as the home directory, as connect() does', async () => {
    const home = mkdtempSync(join(tmpdir(), 'ferrossh-home-'))
    const saved = process.env.HOME
    process.env.HOME = home
    try {
      KnownHosts.add('~/kh', 'example.com', 2200, sshd.hostKeys.ed25519.publicKey)
      expect(readFileSync(join(home, 'kh'), 'utf8')).toContain('[example.com]:2200 ssh-ed25519 ')
      expect(KnownHosts.loadSync('~/kh').check('example.com', 2200, sshd.hostKeys.ed25519.publicKey).status).toBe('match')
      expect((await KnownHosts.load(['~/kh'])).check('example.com', 2200, sshd.hostKeys.ed25519.publicKey).status).toBe('match')
    } finally {
      process.env.HOME = saved
    }
  })
  it('check, formatLine and add', async () => {
    const file = join(dir, 'added')
    KnownHosts.add(file, 'example.com', 2200, sshd.hostKeys.ed25519.publicKey, { hash: true })
    const kh = KnownHosts.loadSync(file)
    expect(kh.check('example.com', 2200, sshd.hostKeys.ed25519.publicKey)).toMatchObject({ status: 'match', line: 1 })
    expect(kh.check('example.com', 2200, sshd.hostKeys.rsa.publicKey).status).toBe('changed')
    expect(kh.check('other.com', 22, sshd.hostKeys.ed25519.publicKey).status).toBe('unknown')
    expect(KnownHosts.formatLine('h', 22, sshd.hostKeys.ed25519.publicKey)).toBe(`h ${sshd.hostKeys.ed25519.publicKey.split(' ').slice(0, 2).join(' ')}`)
    expect(() => kh.check('h', 22, 'not a key')).toThrow(ConfigError)
    expect(() => kh.lookup('h', 70000)).toThrow(ConfigError)
    // wrong types are ConfigErrors naming the argument, not the binding's conversion errors
    const option = (f: () => unknown): string | undefined => { try { f() } catch (e) { expect(e).toBeInstanceOf(ConfigError); return (e as ConfigError).option } return undefined }
    expect(option(() => kh.lookup(5 as never))).toBe('host')
    expect(option(() => kh.check('h', 22, 5 as never))).toBe('key')
    expect(option(() => kh.knownKeyTypes(null as never))).toBe('host')
    expect(option(() => KnownHosts.formatLine({} as never, 22, sshd.hostKeys.ed25519.publicKey))).toBe('host')
    expect(option(() => KnownHosts.add(42 as never, 'h', 22, sshd.hostKeys.ed25519.publicKey))).toBe('file')
    // 'false' is not false: the line would be hashed by a string's truthiness
    expect(option(() => KnownHosts.formatLine('h', 22, sshd.hostKeys.ed25519.publicKey, { hash: 'false' as never }))).toBe('hash')
    expect(option(() => KnownHosts.add(file, 'h', 22, sshd.hostKeys.ed25519.publicKey, { hash: 1 as never }))).toBe('hash')
    expect(option(() => KnownHosts.loadSync(5 as never))).toBe('knownHosts')
    expect(option(() => KnownHosts.loadSync([file, null] as never))).toBe('knownHosts')
    await expect(KnownHosts.load({} as never)).rejects.toMatchObject({ option: 'knownHosts' })
    // misspelt options and wrong argument types are refused, not ignored
    expect(option(() => KnownHosts.formatLine('h', 22, sshd.hostKeys.ed25519.publicKey, { hsh: true } as never))).toBe('hsh')
    expect(option(() => KnownHosts.add(file, 'h', 22, sshd.hostKeys.ed25519.publicKey, { hashed: true } as never))).toBe('hashed')
    expect(option(() => KnownHosts.parse('', 1 as never))).toBe('knownHosts')
    expect(option(() => KnownHosts.parse('', {} as never))).toBe('knownHosts')
    expect(KnownHosts.parse('', null as never).issues).toEqual([])
  })
  it('a known_hosts path that names something endless is refused, not read into memory', async () => {
    const t0 = Date.now()
    await expect(KnownHosts.load('/dev/zero')).rejects.toThrow(/known_hosts file \/dev\/zero: longer than/)
    expect(() => KnownHosts.loadSync('/dev/zero')).toThrow(ConfigError)
    const e = await connect({ host: '127.0.0.1', port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: '/dev/zero' }, connectTimeout: 5000 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ConfigError)
    expect(Date.now() - t0).toBeLessThan(5000)
  })
  it('random and truncated lines only ever become issues', () => {
    const good = sshd.knownHostsLines[0]
    const lines: string[] = []
    for (let i = 0; i < 3000; i++) {
      const r = randomBytes(1 + (i % 90))
      lines.push(i % 3 === 0 ? good.slice(0, i % good.length) : i % 3 === 1 ? r.toString('base64') : r.toString('latin1'))
    }
    const kh = KnownHosts.parse(lines.join('\n'))
    expect(kh.issues.length).toBeGreaterThan(100)
    expect(() => kh.lookup('127.0.0.1', sshd.port)).not.toThrow()
  })
})

describe('parseKey and generateKey', () => {
  it('generated keys are accepted by ssh-keygen and by the server', async () => {
    for (const opts of [{ type: 'ed25519' as const }, { type: 'ecdsa' as const, bits: 384 }, { type: 'rsa' as const, bits: 2048 }]) {
      const k = generateKey({ ...opts, comment: 'gen', passphrase: 'pp' })
      const file = join(dir, `gen-${opts.type}`)
      writeFileSync(file, k.privateKey, { mode: 0o600 })
      const pub = execFileSync('ssh-keygen', ['-y', '-P', 'pp', '-f', file], { encoding: 'utf8' }).trim()
      expect(pub.split(' ').slice(0, 2)).toEqual(k.publicKey.split(' ').slice(0, 2))
      expect(parseKey(k.privateKey)).toMatchObject({ fingerprint: k.fingerprint, encrypted: true })
      expect(parseKey(k.privateKey, 'pp').comment).toBe('gen')
    }
    const k = generateKey({ type: 'ed25519' })
    const withKey = await startSshd({ authorizedKeys: [k.publicKey] })
    try {
      const ssh = await connect({ host: withKey.host, port: withKey.port, username: withKey.user, privateKey: k.privateKey, hostKey: { knownHosts: withKey.knownHostsFile } })
      await ssh.close()
    } finally {
      await withKey.stop()
    }
  })
  it('RSA keys whose primes differ in 64-bit word count are generated and read (Go writes such 2049-bit keys)', () => {
    for (const bits of [2049, 2177]) {
      const k = generateKey({ type: 'rsa', bits })
      const file = join(dir, `gen-rsa-${bits}`)
      writeFileSync(file, k.privateKey, { mode: 0o600 })
      expect(execFileSync('ssh-keygen', ['-l', '-f', file], { encoding: 'utf8' }).split(' ').slice(0, 2)).toEqual([String(bits), k.fingerprint])
      expect(parseKey(k.privateKey)).toMatchObject({ type: 'ssh-rsa', bits, fingerprint: k.fingerprint })
    }
    const odd = rsaKeyFromPrimes(dir, 'primes-1025-1024', 1025, 1024)
    const fingerprint = parseKey(odd.publicKey).fingerprint
    for (const file of [odd.pkcs1, odd.pkcs8]) expect(parseKey(readFileSync(file))).toMatchObject({ type: 'ssh-rsa', bits: 2049, fingerprint })
  })

  it('parseKey reads ssh-keygen keys and public keys, and rejects garbage with ConfigError', () => {
    const info = parseKey(readFileSync(sshd.userKey.path))
    expect(info).toMatchObject({ type: 'ssh-ed25519', fingerprint: sshd.userKey.fingerprint, encrypted: false })
    expect(parseKey(sshd.userKey.publicKey).fingerprint).toBe(sshd.userKey.fingerprint)
    const enc = keygen(join(dir, 'enc-parse'), 'ecdsa', { passphrase: 'secret-pp' })
    expect(() => parseKey(readFileSync(enc.path), 'wrong')).toThrow(/wrong passphrase/)
    for (let i = 0; i < 500; i++) {
      const junk = randomBytes(i * 7 % 3000)
      try {
        parseKey(i % 2 ? junk : Buffer.concat([Buffer.from('-----BEGIN OPENSSH PRIVATE KEY-----\n'), Buffer.from(junk.toString('base64'))]))
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError)
      }
    }
    expect(() => generateKey({ type: 'dsa' as never })).toThrow(ConfigError)
    expect(() => generateKey({ type: 'rsa', bits: 1024 })).toThrow(ConfigError)
    expect(() => generateKey({ type: 'ecdsa', bits: 255 })).toThrow(ConfigError)
    // a misspelt passphrase would give an unencrypted key; bits past 32 bits would wrap
    expect(() => generateKey({ type: 'ed25519', passphrse: 'secret' } as never)).toThrow(/unknown option 'passphrse'/)
    expect(() => generateKey({ type: 'ecdsa', bits: 2 ** 32 + 384 })).toThrow(ConfigError)
  })
})
