// Authentication against real OpenSSH servers: every private key format users bring, ssh-agent,
// user certificates, partial success, PAM keyboard-interactive and the order of methods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'

import { AuthError, ConfigError, connect, generateKey, parseKey, SshError, type ConnectOptions, type Prompt } from '../dist/cjs/index.js'
import { startAgent } from './fixtures/agent.mjs'
import { rsaKeyFromPrimes } from './fixtures/helpers'
import { fingerprintOf, keygen, startSshd, TEST_USER, type Sshd } from './fixtures/sshd.mjs'

type Agent = Awaited<ReturnType<typeof startAgent>>

const PASSPHRASE = 'open sesame 4 keys'
/** Never the right passphrase, password or answer: must not leak into any error. */
const WRONG = 'not-the-secret-7f3a9c'

let dir: string
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-auth-'))
})
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const base = (s: Sshd) => ({ host: s.host, port: s.port, username: s.user, hostKey: { knownHosts: s.knownHostsFile } })

async function rejects(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(() => null, (e: Error) => e)
  if (!r) throw new Error('expected a rejection')
  return r
}

async function authError(p: Promise<unknown>): Promise<AuthError> {
  const e = await rejects(p)
  expect(e).toBeInstanceOf(AuthError)
  return e as AuthError
}

/** Connects, checks the session really is the test user's, and closes. */
async function login(s: Sshd, options: Partial<ConnectOptions>): Promise<void> {
  const ssh = await connect({ ...base(s), ...options })
  try {
    expect((await ssh.exec('id -un')).stdout.toString().trim()).toBe(s.user)
  } finally {
    await ssh.close()
  }
}

/** The sshd log lines of successful logins (they name the key's fingerprint, or the certificate). */
const accepted = (s: Sshd) => s.log().split(/\r?\n/).filter((l) => /^Accepted (publickey|password|keyboard-interactive)/.test(l))

function leakCheck(e: Error, ...secrets: string[]) {
  const text = e.message + inspect(e, { depth: 5 }) + JSON.stringify(e) + String(e.stack)
  for (const secret of secrets) expect(text).not.toContain(secret)
}

// ---------------------------------------------------------------------------------------------
// 1. Private key types and file formats

interface KeyCase {
  name: string
  /** ssh-keygen -t / puttygen -t */
  type: 'ed25519' | 'ecdsa' | 'rsa'
  bits?: number
  /** ssh-keygen -m, or PPK version for puttygen */
  format: 'OpenSSH' | 'PEM' | 'PKCS8' | 'PPK2' | 'PPK3'
  encrypted: boolean
  /** What the file must look like, so that the case really tests the format it names. */
  header: RegExp
  via: 'privateKey' | 'privateKeyPath'
  path?: string
  fingerprint?: string
  publicKey?: string
}

const KEY_TYPES = [
  { type: 'ed25519', label: 'ed25519' },
  { type: 'ecdsa', bits: 256, label: 'ecdsa-256' },
  { type: 'ecdsa', bits: 384, label: 'ecdsa-384' },
  { type: 'ecdsa', bits: 521, label: 'ecdsa-521' },
  { type: 'rsa', bits: 2048, label: 'rsa-2048' },
] as const

function headerFor(type: string, format: KeyCase['format'], encrypted: boolean): RegExp {
  switch (format) {
    case 'OpenSSH':
      return /^-----BEGIN OPENSSH PRIVATE KEY-----\n/
    case 'PEM': {
      const label = type === 'rsa' ? 'RSA' : 'EC'
      return encrypted
        ? new RegExp(`^-----BEGIN ${label} PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\n`)
        : new RegExp(`^-----BEGIN ${label} PRIVATE KEY-----\\n(?!Proc-Type)`)
    }
    case 'PKCS8':
      return encrypted ? /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/ : /^-----BEGIN PRIVATE KEY-----\n/
    case 'PPK2':
    case 'PPK3': {
      const v = format === 'PPK2' ? 2 : 3
      return new RegExp(`^PuTTY-User-Key-File-${v}: \\S+\\nEncryption: ${encrypted ? 'aes256-cbc' : 'none'}\\n`)
    }
  }
}

const keyCases: KeyCase[] = []
for (const [ti, t] of KEY_TYPES.entries()) {
  // ssh-keygen writes ed25519 keys in its own format whatever -m says: PEM and PKCS8 exist
  // only for ecdsa and rsa.
  const formats = t.type === 'ed25519' ? (['OpenSSH', 'PPK2', 'PPK3'] as const) : (['OpenSSH', 'PEM', 'PKCS8', 'PPK2', 'PPK3'] as const)
  for (const [fi, format] of formats.entries()) {
    for (const encrypted of [false, true]) {
      keyCases.push({
        name: `${t.label} ${format}${encrypted ? ' encrypted' : ''}`,
        type: t.type,
        bits: 'bits' in t ? t.bits : undefined,
        format,
        encrypted,
        header: headerFor(t.type, format, encrypted),
        // both ways of passing a key, spread over every type and format
        via: (ti + fi + Number(encrypted)) % 2 === 0 ? 'privateKeyPath' : 'privateKey',
      })
    }
  }
}

function makeKey(c: KeyCase, into: string): void {
  const file = join(into, c.name.replace(/\W+/g, '_'))
  if (c.format === 'PPK2' || c.format === 'PPK3') {
    // puttygen asks on the terminal unless both passphrases come from files (empty = none)
    const pass = join(into, 'ppk-passphrase')
    writeFileSync(pass, c.encrypted ? PASSPHRASE : '')
    const args = ['-q', '-t', c.type, '-C', `ferrossh ${c.name}`, '-o', file, '--new-passphrase', pass, '--random-device', '/dev/urandom',
      '--ppk-param', `version=${c.format === 'PPK2' ? 2 : 3}`]
    if (c.bits) args.push('-b', String(c.bits))
    execFileSync('puttygen', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const pub = execFileSync('puttygen', [file, '-L'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString().trim()
    writeFileSync(`${file}.pub`, pub + '\n')
    c.publicKey = pub
    c.fingerprint = fingerprintOf(`${file}.pub`)
  } else {
    const k = keygen(file, c.type, {
      bits: c.bits,
      passphrase: c.encrypted ? PASSPHRASE : '',
      comment: `ferrossh ${c.name}`,
      format: c.format === 'OpenSSH' ? undefined : c.format,
    })
    c.publicKey = k.publicKey
    c.fingerprint = k.fingerprint
  }
  c.path = file
}

describe('private key types and formats', () => {
  let sshd: Sshd
  beforeAll(async () => {
    const keys = join(dir, 'formats')
    mkdirSync(keys)
    for (const c of keyCases) makeKey(c, keys)
    sshd = await startSshd({
      authorizedKeys: keyCases.map((c) => c.publicKey!),
      // no `ssh-rsa` (SHA-1) signatures: RSA keys must sign with rsa-sha2-256/512
      config: ['PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed25519'],
    })
  }, 120_000)
  afterAll(async () => { await sshd?.stop() })

  const keyOptions = (c: KeyCase, passphrase?: string): Partial<ConnectOptions> => ({
    ...(c.via === 'privateKeyPath' ? { privateKeyPath: c.path! } : { privateKey: readFileSync(c.path!, 'utf8') }),
    ...(passphrase === undefined ? {} : { passphrase }),
  })

  it.each(keyCases)('$name ($via) authenticates', async (c) => {
    expect(readFileSync(c.path!, 'utf8')).toMatch(c.header)
    await login(sshd, keyOptions(c, c.encrypted ? PASSPHRASE : undefined))
    // the server saw this very key
    expect(accepted(sshd).some((l) => l.includes(`publickey for ${sshd.user}`) && l.endsWith(c.fingerprint!))).toBe(true)
  })

  it.each(keyCases.filter((c) => c.encrypted))('$name ($via): a wrong passphrase is an AuthError, without the passphrase', async (c) => {
    const e = await authError(connect({ ...base(sshd), ...keyOptions(c, WRONG) }))
    expect(e.attempts).toHaveLength(1)
    expect(e.attempts[0]).toMatchObject({ method: 'publickey', outcome: 'wrong passphrase' })
    expect(e.message).toContain('wrong passphrase')
    leakCheck(e, WRONG, PASSPHRASE)
  })

  it('an encrypted key without any passphrase says a passphrase is needed', async () => {
    const c = keyCases.find((k) => k.encrypted && k.format === 'PKCS8')!
    const e = await authError(connect({ ...base(sshd), ...keyOptions(c) }))
    expect(e.attempts.map((a) => a.outcome)).toEqual(['key is encrypted and no passphrase was given'])
  })

  it('RSA signs with rsa-sha2-512/256: the server accepts no ssh-rsa (SHA-1) signature', async () => {
    const rsa = keyCases.find((c) => c.type === 'rsa' && c.format === 'OpenSSH' && !c.encrypted)!
    const before = sshd.log().length
    await login(sshd, { privateKeyPath: rsa.path! })
    const log = sshd.log().slice(before)
    expect(readFileSync(sshd.configPath, 'utf8')).toMatch(/^PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256,[^\n]*$/m)
    expect(log).toMatch(/pkalg rsa-sha2-(256|512) /)
    expect(log).not.toMatch(/pkalg ssh-rsa /)
  })
})

describe('RSA keys of any size', () => {
  // RSA signatures must be exactly as long as the modulus (sshd: "key bits do not match"
  // otherwise), and keys whose primes differ in size (Go's crypto/rsa makes 2049-bit keys from
  // primes of 1025 and 1024 bits) must load at all
  let sshd: Sshd
  const cases: { name: string; path: string; publicKey: string; bits: number }[] = []
  beforeAll(async () => {
    const keys = join(dir, 'rsa-sizes')
    mkdirSync(keys)
    for (const bits of [2100, 3000]) {
      const k = keygen(join(keys, `keygen-${bits}`), 'rsa', { bits })
      cases.push({ name: `ssh-keygen -b ${bits}`, path: k.path, publicKey: k.publicKey, bits })
    }
    for (const bits of [3000, 2049]) {
      const g = generateKey({ type: 'rsa', bits })
      const path = join(keys, `generated-${bits}`)
      writeFileSync(path, g.privateKey, { mode: 0o600 })
      cases.push({ name: `generateKey bits ${bits}`, path, publicKey: g.publicKey, bits })
    }
    const odd = rsaKeyFromPrimes(keys, 'primes-1025-1024', 1025, 1024)
    cases.push({ name: 'PKCS#1 with primes of 1025 and 1024 bits', path: odd.pkcs1, publicKey: odd.publicKey, bits: odd.bits })
    cases.push({ name: 'PKCS#8 with primes of 1025 and 1024 bits', path: odd.pkcs8, publicKey: odd.publicKey, bits: odd.bits })
    sshd = await startSshd({ authorizedKeys: cases.map((c) => c.publicKey) })
  }, 120_000)
  afterAll(async () => { await sshd?.stop() })

  const names = ['ssh-keygen -b 2100', 'ssh-keygen -b 3000', 'generateKey bits 3000', 'generateKey bits 2049',
    'PKCS#1 with primes of 1025 and 1024 bits', 'PKCS#8 with primes of 1025 and 1024 bits']

  it.each(names)('%s logs in, as with OpenSSH ssh', async (name) => {
    const c = cases.find((k) => k.name === name)!
    expect(parseKey(readFileSync(c.path)).bits).toBe(c.bits)
    const ssh = execFileSync('ssh', ['-F', '/dev/null', '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${sshd.knownHostsFile}`, '-o', 'IdentitiesOnly=yes',
      '-i', c.path, '-p', String(sshd.port), `${sshd.user}@${sshd.host}`, 'echo ok'], { encoding: 'utf8' })
    expect(ssh.trim()).toBe('ok')
    const before = accepted(sshd).length
    await login(sshd, { privateKeyPath: c.path })
    const fingerprint = parseKey(c.publicKey).fingerprint
    expect(accepted(sshd).slice(before).some((l) => l.endsWith(fingerprint))).toBe(true)
    expect(sshd.log()).not.toMatch(/key bits do not match/)
  })
})

// ---------------------------------------------------------------------------------------------
// 2. ssh-agent

describe('a key that takes long to decrypt', () => {
  let sshd: Sshd
  let slow: string
  beforeAll(async () => {
    // many bcrypt rounds: decrypting it takes a second or more
    slow = join(dir, 'slow_ed25519')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-a', '300', '-N', PASSPHRASE, '-C', 'slow', '-f', slow])
    sshd = await startSshd({ authorizedKeys: [readFileSync(slow + '.pub', 'utf8').trim()] })
  }, 120_000)
  afterAll(async () => { await sshd?.stop() })

  it('is decrypted off the runtime thread: other connections go on meanwhile, and an abort ends the wait', async () => {
    const other = await connect({ ...base(sshd), privateKeyPath: sshd.userKey.path })
    const t0 = Date.now()
    const slowConnect = connect({ ...base(sshd), privateKeyPath: slow, passphrase: PASSPHRASE })
    await new Promise((r) => setTimeout(r, 50))
    const e0 = Date.now()
    expect((await other.exec('echo meanwhile')).stdout.toString()).toBe('meanwhile\n')
    const execMs = Date.now() - e0
    const ssh = await slowConnect
    const slowMs = Date.now() - t0
    await ssh.close()
    await other.close()
    // the decryption took long, and the exec did not wait for it
    expect(slowMs).toBeGreaterThan(500)
    expect(execMs).toBeLessThan(slowMs / 2)
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 100)
    const a0 = Date.now()
    const e = await rejects(connect({ ...base(sshd), privateKeyPath: slow, passphrase: PASSPHRASE, signal: ac.signal }))
    expect(e.name).toBe('AbortError')
    expect(Date.now() - a0).toBeLessThan(slowMs / 2 + 100)
  })
})

describe('a server that ends the connection during authentication', () => {
  let sshd: Sshd
  beforeAll(async () => {
    // one failure and sshd disconnects: "Too many authentication failures"
    sshd = await startSshd({ config: ['MaxAuthTries 1'] })
  })
  afterAll(async () => { await sshd?.stop() })

  it('is a DisconnectError, not a rejected method', async () => {
    const wrong = join(dir, 'not-authorized')
    keygen(wrong)
    const e = await rejects(connect({ ...base(sshd), privateKeyPath: [wrong, sshd.userKey.path], password: WRONG, connectTimeout: 10_000 }))
    expect(e).not.toBeInstanceOf(AuthError)
    expect((e as SshError).code).toBe('ERR_SSH_DISCONNECTED')
    expect(e.message).toContain('Too many authentication failures')
    expect(e.message).not.toContain(WRONG)
  })
})

describe('ssh-agent', () => {
  let sshd: Sshd
  const agents: Agent[] = []
  let authorizedRsa: string
  let stranger: string
  const agent = async (keys: string[]) => {
    const a = await startAgent(keys)
    agents.push(a)
    return a
  }
  beforeAll(async () => {
    const d = join(dir, 'agent')
    mkdirSync(d)
    authorizedRsa = keygen(join(d, 'id_rsa'), 'rsa', { bits: 2048 }).path
    keygen(join(d, 'other1'), 'ed25519')
    keygen(join(d, 'other2'), 'ecdsa', { bits: 384 })
    keygen(join(d, 'other3'), 'ed25519')
    stranger = join(d, 'other1')
    sshd = await startSshd({
      authorizedKeys: [readFileSync(`${authorizedRsa}.pub`, 'utf8').trim()],
      config: ['PubkeyAcceptedAlgorithms rsa-sha2-512,rsa-sha2-256,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-ed25519'],
    })
  })
  afterAll(async () => {
    for (const a of agents) await a.stop()
    await sshd?.stop()
  })

  it('authenticates with a key held by ssh-agent', async () => {
    const a = await agent([sshd.userKey.path])
    const trace: string[] = []
    await login(sshd, { agent: a.socket, debug: (l) => trace.push(l) })
    expect(accepted(sshd).some((l) => l.endsWith(sshd.userKey.fingerprint))).toBe(true)
    expect(trace.filter((l) => /^auth /.test(l)).at(-1)).toMatch(/from agent .*: accepted$/)
  })

  it('several keys where only the last is authorized (an RSA key: the agent signs rsa-sha2)', async () => {
    const d = join(dir, 'agent')
    const a = await agent([join(d, 'other1'), join(d, 'other2'), join(d, 'other3'), authorizedRsa])
    const listed = execFileSync('ssh-add', ['-l'], { env: { ...process.env, SSH_AUTH_SOCK: a.socket } }).toString().trim().split('\n')
    expect(listed).toHaveLength(4)
    expect(listed[3]).toContain(fingerprintOf(`${authorizedRsa}.pub`))
    const trace: string[] = []
    await login(sshd, { agent: a.socket, debug: (l) => trace.push(l) })
    expect(trace.filter((l) => /^auth /.test(l)).map((l) => l.replace(/^.*: /, ''))).toEqual(['rejected', 'rejected', 'rejected', 'accepted'])
  })

  it('a socket where no agent runs: AuthError saying the agent is not running', async () => {
    const e = await authError(connect({ ...base(sshd), agent: '/nonexistent/socket' }))
    expect(e.message).toMatch(/agent not running/)
    expect(e.attempts).toEqual([{ method: 'publickey', outcome: 'agent not running (cannot connect to its socket)', detail: 'agent /nonexistent/socket' }])
  })

  it('an agent without keys: "agent has no keys"', async () => {
    const a = await agent([])
    const e = await authError(connect({ ...base(sshd), agent: a.socket }))
    expect(e.attempts).toEqual([{ method: 'publickey', outcome: 'agent has no keys', detail: `agent ${a.socket}` }])
    expect(e.message).toContain('agent has no keys')
  })

  it('an agent key the server rejects is "rejected", distinct from the agent failures', async () => {
    const a = await agent([stranger])
    const e = await authError(connect({ ...base(sshd), agent: a.socket }))
    expect(e.attempts).toHaveLength(1)
    expect(e.attempts[0].outcome).toBe('rejected')
    expect(e.attempts[0].detail).toContain(fingerprintOf(`${stranger}.pub`))
    expect(e.attempts[0].detail).toContain(a.socket)
    const empty = await agent([])
    const outcomes = new Set([
      e.attempts[0].outcome,
      (await authError(connect({ ...base(sshd), agent: empty.socket }))).attempts[0].outcome,
      (await authError(connect({ ...base(sshd), agent: join(dir, 'no-agent.sock') }))).attempts[0].outcome,
    ])
    expect(outcomes.size).toBe(3)
  })

  it('an agent failure does not stop the other methods', async () => {
    await login(sshd, { agent: '/nonexistent/socket', password: sshd.password })
    const e = await authError(connect({ ...base(sshd), agent: '/nonexistent/socket', password: WRONG }))
    expect(e.attempts.map((a) => a.outcome)).toEqual(['agent not running (cannot connect to its socket)', 'rejected'])
    leakCheck(e, WRONG)
  })
})

// ---------------------------------------------------------------------------------------------
// 3. OpenSSH user certificates

describe('user certificates', () => {
  let sshd: Sshd
  let d: string
  const agents: Agent[] = []
  /** key (with <key>-cert.pub beside it), and a copy of the key alone */
  const user: Record<string, { key: string; cert: string; bare: string; id: string }> = {}

  const sign = (pub: string, id: string, principal: string) =>
    execFileSync('ssh-keygen', ['-q', '-s', join(d, 'ca'), '-I', id, '-n', principal, pub], { stdio: 'pipe' })

  beforeAll(async () => {
    d = join(dir, 'certs')
    mkdirSync(d)
    keygen(join(d, 'ca'), 'ed25519', { comment: 'test CA' })
    for (const [type, bits] of [['ed25519', undefined], ['ecdsa', 256], ['rsa', 2048]] as const) {
      const sub = join(d, type)
      mkdirSync(join(sub, 'bare'), { recursive: true })
      const key = keygen(join(sub, 'id'), type, { bits }).path
      const id = `ferrossh-${type}-cert`
      sign(`${key}.pub`, id, TEST_USER)
      const bare = join(sub, 'bare', 'id')
      copyFileSync(key, bare)
      copyFileSync(`${key}.pub`, `${bare}.pub`)
      chmodSync(bare, 0o600)
      user[type] = { key, cert: `${key}-cert.pub`, bare, id }
    }
    // the user's keys are not in authorized_keys: only the CA vouches for them
    sshd = await startSshd({ config: [`TrustedUserCAKeys ${join(d, 'ca.pub')}`] })
  })
  afterAll(async () => {
    for (const a of agents) await a.stop()
    await sshd?.stop()
  })

  const certAccepted = (id: string) => accepted(sshd).some((l) => l.includes('-CERT ') && l.includes(`ID ${id} `))

  it('without its certificate the key is rejected', async () => {
    const e = await authError(connect({ ...base(sshd), privateKeyPath: user.ed25519.bare }))
    expect(e.attempts.map((a) => a.outcome)).toEqual(['rejected'])
  })

  it.each(['ed25519', 'ecdsa', 'rsa'])('%s: privateKeyPath uses <key>-cert.pub beside it', async (type) => {
    await login(sshd, { privateKeyPath: user[type].key })
    expect(certAccepted(user[type].id)).toBe(true)
  })

  it('explicit certificatePath', async () => {
    const u = user.ed25519
    await login(sshd, { privateKeyPath: u.bare, certificatePath: u.cert })
    expect(certAccepted(u.id)).toBe(true)
  })

  it('certificate text with privateKey text', async () => {
    const u = user.ecdsa
    await login(sshd, { privateKey: readFileSync(u.bare, 'utf8'), certificate: readFileSync(u.cert, 'utf8') })
    expect(certAccepted(u.id)).toBe(true)
  })

  it('the key only in the agent, plus certificate', async () => {
    const u = user.ed25519
    // from the bare copy: ssh-add would load a certificate lying beside the key too
    const a = await startAgent([u.bare])
    agents.push(a)
    const listed = execFileSync('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: a.socket } }).toString()
    expect(listed).not.toContain('-cert-v01@openssh.com')
    const e = await authError(connect({ ...base(sshd), agent: a.socket }))
    expect(e.attempts.map((x) => x.outcome)).toEqual(['rejected'])
    await login(sshd, { agent: a.socket, certificate: readFileSync(u.cert, 'utf8') })
    expect(certAccepted(u.id)).toBe(true)
  })

  it.each([['ecdsa', 'ecdsa-sha2-nistp256'], ['rsa', 'ssh-rsa']])('%s: a certificate loaded into the agent with its key (ssh-add picks up <key>-cert.pub)', async (type, algorithm) => {
    const u = user[type]
    const a = await startAgent([u.key])
    agents.push(a)
    const listed = execFileSync('ssh-add', ['-L'], { env: { ...process.env, SSH_AUTH_SOCK: a.socket } }).toString()
    expect(listed).toContain(`${algorithm}-cert-v01@openssh.com`)
    await login(sshd, { agent: a.socket })
    expect(certAccepted(u.id)).toBe(true)
  })

  it('an RSA key in the agent, plus certificate', async () => {
    const u = user.rsa
    const a = await startAgent([u.bare])
    agents.push(a)
    await login(sshd, { agent: a.socket, certificatePath: u.cert })
    expect(certAccepted(u.id)).toBe(true)
  })

  it('a certificate for another principal is an AuthError', async () => {
    const other = join(d, 'other-principal')
    mkdirSync(other)
    copyFileSync(user.ed25519.bare, join(other, 'id'))
    chmodSync(join(other, 'id'), 0o600)
    copyFileSync(`${user.ed25519.bare}.pub`, join(other, 'id.pub'))
    sign(join(other, 'id.pub'), 'not-for-this-user', 'somebody-else')
    const e = await authError(connect({ ...base(sshd), privateKeyPath: join(other, 'id') }))
    expect(e.attempts).toHaveLength(1)
    expect(e.attempts[0]).toMatchObject({ method: 'publickey', outcome: 'rejected' })
    expect(e.attempts[0].detail).toContain('not-for-this-user')
    expect(sshd.log()).toMatch(/name is not a listed principal|not in the list of principals|Certificate invalid/)
  })

  it('a certificate given with several keys goes with the key it certifies', async () => {
    await login(sshd, { privateKeyPath: [user.ed25519.bare, user.ecdsa.bare], certificatePath: user.ecdsa.cert })
    expect(certAccepted(user.ecdsa.id)).toBe(true)
    // several certificates, each with its own key
    await login(sshd, { privateKeyPath: user.rsa.bare, certificatePath: [user.ed25519.cert, user.rsa.cert] })
    expect(certAccepted(user.rsa.id)).toBe(true)
    await login(sshd, { privateKey: readFileSync(user.ed25519.bare, 'utf8'), certificate: [readFileSync(user.ecdsa.cert, 'utf8'), readFileSync(user.ed25519.cert, 'utf8')] })
    expect(certAccepted(user.ed25519.id)).toBe(true)
  })

  it('a certificate for none of the keys given is a ConfigError', async () => {
    const e1 = await rejects(connect({ ...base(sshd), privateKeyPath: [user.ed25519.bare, user.rsa.bare], certificatePath: user.ecdsa.cert }))
    expect(e1).toBeInstanceOf(ConfigError)
    expect(e1.message).toMatch(/another key \(SHA256:.*none of the keys given/)
    expect(e1.message).toContain(user.rsa.bare)
    expect((e1 as ConfigError).option).toBe('certificatePath')
    const e2 = await rejects(connect({ ...base(sshd), privateKey: readFileSync(user.rsa.bare, 'utf8'), certificate: readFileSync(user.ed25519.cert, 'utf8') }))
    expect(e2).toBeInstanceOf(ConfigError)
  })

  describe('ssh_config CertificateFile', () => {
    const saved = process.env.SSH_AUTH_SOCK
    beforeAll(() => {
      delete process.env.SSH_AUTH_SOCK
    })
    afterAll(() => {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK
      else process.env.SSH_AUTH_SOCK = saved
    })
    const configWith = (name: string, lines: string[]): string => {
      const file = join(d, name)
      writeFileSync(file, ['Host *', ...lines.map((l) => `  ${l}`), ''].join('\n'))
      return file
    }

    it('every CertificateFile that exists goes with the IdentityFile it certifies; a missing one is skipped', async () => {
      const file = configWith('cfg-certs', [
        'IdentitiesOnly yes',
        `IdentityFile ${user.ed25519.bare}`,
        `IdentityFile ${user.ecdsa.bare}`,
        `CertificateFile ${join(d, 'no-such-cert.pub')}`,
        `CertificateFile ${user.rsa.cert}`,
        `CertificateFile ${user.ecdsa.cert}`,
      ])
      await login(sshd, { sshConfig: file })
      expect(certAccepted(user.ecdsa.id)).toBe(true)
    })

    it("a CertificateFile goes with the agent's key it certifies", async () => {
      const u = user.rsa
      const a = await startAgent([u.bare])
      agents.push(a)
      const file = configWith('cfg-agent-certs', [
        `IdentityAgent ${a.socket}`,
        `IdentityFile ${join(d, 'no-such-key')}`,
        `CertificateFile ${user.ed25519.cert}`,
        `CertificateFile ${u.cert}`,
      ])
      await login(sshd, { sshConfig: file })
      expect(certAccepted(u.id)).toBe(true)
    })
  })

  it('a certificate that is not one is a ConfigError', async () => {
    const e = await rejects(connect({ ...base(sshd), privateKeyPath: user.ed25519.bare, certificate: readFileSync(`${user.ed25519.bare}.pub`, 'utf8') }))
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).option).toBe('certificate')
  })
})

// ---------------------------------------------------------------------------------------------
// 4. Partial success (RFC 4252 §5.1)

describe('partial success: AuthenticationMethods publickey,password', () => {
  let sshd: Sshd
  beforeAll(async () => {
    sshd = await startSshd({ config: ['AuthenticationMethods publickey,password'] })
  })
  afterAll(async () => { await sshd?.stop() })

  it('key then password logs in', async () => {
    await login(sshd, { privateKeyPath: sshd.userKey.path, password: sshd.password })
    expect(accepted(sshd).some((l) => l.startsWith(`Accepted password for ${sshd.user}`))).toBe(true)
  })

  it('the key alone: AuthError with "partial success" and password allowed', async () => {
    const e = await authError(connect({ ...base(sshd), privateKeyPath: sshd.userKey.path }))
    expect(e.attempts).toHaveLength(1)
    expect(e.attempts[0]).toMatchObject({ method: 'publickey', outcome: 'partial success' })
    expect(e.allowed).toEqual(['password'])
    expect(e.message).toContain('partial success')
  })

  it('key then a wrong password: both attempts listed, no password in the error', async () => {
    const e = await authError(connect({ ...base(sshd), privateKeyPath: sshd.userKey.path, password: WRONG }))
    expect(e.attempts.map((a) => [a.method, a.outcome])).toEqual([['publickey', 'partial success'], ['password', 'rejected']])
    expect(e.allowed).toEqual(['password'])
    leakCheck(e, WRONG)
  })

  it('the password alone is not enough', async () => {
    const e = await authError(connect({ ...base(sshd), password: sshd.password }))
    expect(e.attempts.map((a) => a.outcome)).toEqual(['rejected'])
    expect(e.allowed).toEqual(['publickey'])
    leakCheck(e, sshd.password)
  })
})

// ---------------------------------------------------------------------------------------------
// 5. keyboard-interactive through PAM

describe('partial success: AuthenticationMethods password,publickey (the key is tried first)', () => {
  let sshd: Sshd
  beforeAll(async () => {
    sshd = await startSshd({ config: ['AuthenticationMethods password,publickey'] })
  })
  afterAll(async () => { await sshd?.stop() })

  it("after the password's partial success the key gets another turn, and the login succeeds", async () => {
    const trace: string[] = []
    await login(sshd, { privateKeyPath: sshd.userKey.path, password: sshd.password, debug: (l: string) => trace.push(l) })
    const auth = trace.filter((l) => l.startsWith('auth '))
    expect(auth[0]).toMatch(/^auth publickey .*: rejected$/)
    expect(auth[1]).toBe('auth password: partial success')
    expect(auth[2]).toMatch(/^auth publickey .*: accepted$/)
    expect(accepted(sshd).some((l) => l.startsWith(`Accepted publickey for ${sshd.user}`))).toBe(true)
  })

  it('the key alone is rejected once, not retried without a partial success', async () => {
    const e = await authError(connect({ ...base(sshd), privateKeyPath: sshd.userKey.path }))
    expect(e.attempts.map((a) => [a.method, a.outcome])).toEqual([['publickey', 'rejected']])
  })
})

describe('keyboard-interactive (PAM)', () => {
  let sshd: Sshd
  beforeAll(async () => {
    // PAM's pam_unix asks "Password: " without echo through keyboard-interactive
    sshd = await startSshd({ replace: { UsePAM: 'yes', KbdInteractiveAuthentication: 'yes' } })
  })
  afterAll(async () => { await sshd?.stop() })

  type Call = { prompts: Prompt[]; info: { name: string; instructions: string } }

  it('the callback gets the prompts with echo flags and info; the password answers them', async () => {
    const calls: Call[] = []
    await login(sshd, {
      keyboardInteractive: async (prompts, info) => {
        calls.push({ prompts, info })
        // PAM asks for the password; OpenSSH may end with a round without prompts
        return prompts.map((p) => (/password/i.test(p.prompt) ? sshd.password : ''))
      },
    })
    expect(calls.length).toBeGreaterThanOrEqual(1)
    expect(calls[0].prompts).toEqual([{ prompt: 'Password: ', echo: false }])
    expect(calls[0].info).toEqual({ name: expect.any(String), instructions: expect.any(String) })
    for (const c of calls.slice(1)) expect(c.prompts).toEqual([])
    expect(accepted(sshd).some((l) => l.startsWith(`Accepted keyboard-interactive/pam for ${sshd.user}`))).toBe(true)
  })

  it('a wrong answer is an AuthError, without the answer', async () => {
    const e = await authError(connect({ ...base(sshd), keyboardInteractive: (prompts) => prompts.map(() => WRONG) }))
    expect(e.attempts).toEqual([{ method: 'keyboard-interactive', outcome: 'rejected', detail: null }])
    expect(e.allowed).toContain('keyboard-interactive')
    leakCheck(e, WRONG)
  })

  it('a callback that throws ends the method cleanly', async () => {
    const e = await authError(connect({ ...base(sshd), keyboardInteractive: () => { throw new Error('user cancelled') } }))
    expect(e.attempts.map((a) => a.method)).toEqual(e.attempts.map(() => 'keyboard-interactive'))
    expect(e.attempts.some((a) => /cancel/.test(a.outcome))).toBe(true)
    // the server is still waiting for answers: the next method must get through all the same
    // (a short timeout: a hang is the failure this looks for)
    await login(sshd, { keyboardInteractive: async () => { throw new Error('no') }, password: sshd.password, connectTimeout: 10_000 })
    expect(accepted(sshd).some((l) => l.startsWith(`Accepted password for ${sshd.user}`))).toBe(true)
  })

  it('a callback that rejects or returns no array ends the method cleanly', async () => {
    for (const cb of [() => Promise.reject(new Error('no')), () => undefined as unknown as string[], () => 'x' as unknown as string[]]) {
      const e = await authError(connect({ ...base(sshd), keyboardInteractive: cb }))
      expect(e.attempts.map((a) => a.method)).toEqual(['keyboard-interactive'])
      expect(e.attempts[0].outcome).toMatch(/cancel/)
    }
  })

  it('too many or too few answers cancel the round: nothing is sent for it, and the next method runs', async () => {
    for (const answers of [[sshd.password, 'extra'], []]) {
      const e = await authError(connect({ ...base(sshd), keyboardInteractive: () => answers }))
      expect(e.attempts.map((a) => a.method)).toEqual(['keyboard-interactive'])
      expect(e.attempts[0].outcome).toMatch(/cancel/)
      leakCheck(e, sshd.password)
    }
    const before = accepted(sshd).length
    await login(sshd, { keyboardInteractive: () => [sshd.password, 'extra'], password: sshd.password })
    expect(accepted(sshd).slice(before).some((l) => l.startsWith(`Accepted password for ${sshd.user}`))).toBe(true)
  })

  it('an answer with a NUL byte or over 250 KiB cancels the round instead of costing the connection', async () => {
    for (const bad of ['pass\0word', 'x'.repeat(300 * 1024)]) {
      const before = accepted(sshd).length
      await login(sshd, { keyboardInteractive: (prompts) => prompts.map(() => bad), password: sshd.password })
      expect(accepted(sshd).slice(before).some((l) => l.startsWith(`Accepted password for ${sshd.user}`))).toBe(true)
    }
  })
})

// ---------------------------------------------------------------------------------------------
// 6. authOrder

describe('identity files found rather than given', () => {
  let sshd: Sshd
  let garbage: string
  const saved = { HOME: process.env.HOME, SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK }
  beforeAll(async () => {
    sshd = await startSshd()
    garbage = join(dir, 'found-garbage')
    writeFileSync(garbage, 'this is no private key\n', { mode: 0o600 })
    delete process.env.SSH_AUTH_SOCK
  })
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
    await sshd?.stop()
  })
  const configWith = (name: string, ids: string[]): string => {
    const file = join(dir, name)
    writeFileSync(file, ['Host *', '  IdentitiesOnly yes', ...ids.map((f) => `  IdentityFile ${f}`), ''].join('\n'))
    return file
  }

  it('an ssh_config IdentityFile that cannot be loaded is skipped, as ssh skips it; a key given in the options is still a ConfigError', async () => {
    await login(sshd, { sshConfig: configWith('cfg-garbage-first', [garbage, sshd.userKey.path]) })
    const e = await authError(connect({ ...base(sshd), sshConfig: configWith('cfg-garbage-only', [garbage]) }))
    expect(e.attempts).toEqual([expect.objectContaining({ method: 'publickey', outcome: expect.stringMatching(/^not loaded: /), detail: garbage })])
    expect(e.message).toContain('not loaded')
    const given = await rejects(connect({ ...base(sshd), privateKeyPath: [garbage, sshd.userKey.path] }))
    expect(given).toBeInstanceOf(ConfigError)
  })

  it('a default ~/.ssh/id_* file that cannot be loaded is skipped for the next one', async () => {
    const home = join(dir, 'found-home')
    mkdirSync(join(home, '.ssh'), { recursive: true })
    // id_ed25519 is tried first, id_rsa later (its name need not match its type)
    copyFileSync(garbage, join(home, '.ssh', 'id_ed25519'))
    copyFileSync(sshd.userKey.path, join(home, '.ssh', 'id_rsa'))
    process.env.HOME = home
    try {
      await login(sshd, {})
    } finally {
      if (saved.HOME === undefined) delete process.env.HOME
      else process.env.HOME = saved.HOME
    }
  })
})

describe('authOrder', () => {
  let sshd: Sshd
  let agent: Agent
  let strangerKey: string
  let strangerAgentKey: string
  beforeAll(async () => {
    const d = join(dir, 'order')
    mkdirSync(d)
    strangerKey = keygen(join(d, 'stranger'), 'ed25519').path
    strangerAgentKey = keygen(join(d, 'agent-stranger'), 'ed25519').path
    agent = await startAgent([strangerAgentKey])
    // every method the library has is offered: publickey, keyboard-interactive (PAM) and password
    sshd = await startSshd({ replace: { UsePAM: 'yes', KbdInteractiveAuthentication: 'yes' } })
  })
  afterAll(async () => {
    await agent?.stop()
    await sshd?.stop()
  })

  /** Four methods that all fail, so that AuthError lists every attempt in order. */
  const failing = (): Partial<ConnectOptions> => ({
    privateKeyPath: strangerKey,
    agent: agent.socket,
    keyboardInteractive: (prompts) => prompts.map(() => WRONG),
    password: WRONG,
  })

  /** [method, what it was] of each attempt: the agent's attempt is a publickey one from the agent. */
  const order = (e: AuthError) =>
    e.attempts.map((a) => (a.method === 'publickey' && a.detail?.includes(' from agent ') ? 'agent' : a.method))

  it('default: publickey, agent, keyboard-interactive, password', async () => {
    const e = await authError(connect({ ...base(sshd), ...failing() }))
    expect(order(e)).toEqual(['publickey', 'agent', 'keyboard-interactive', 'password'])
    expect(e.attempts[0].detail).toContain(strangerKey)
    expect(e.attempts[1].detail).toContain(fingerprintOf(`${strangerAgentKey}.pub`))
    expect(e.attempts.every((a) => a.outcome === 'rejected')).toBe(true)
    leakCheck(e, WRONG)
  })

  it('an empty authOrder, or one naming a method twice, is a ConfigError before anything is sent', async () => {
    const empty = await rejects(connect({ ...base(sshd), password: WRONG, authOrder: [] }))
    expect(empty).toBeInstanceOf(ConfigError)
    expect(empty.message).toMatch(/authOrder.*empty/)
    const twice = await rejects(connect({ ...base(sshd), password: WRONG, authOrder: ['password', 'password'] }))
    expect(twice).toBeInstanceOf(ConfigError)
    expect(twice.message).toMatch(/'password' twice/)
  })

  it('a given order is followed', async () => {
    const e = await authError(connect({ ...base(sshd), ...failing(), authOrder: ['password', 'keyboard-interactive', 'agent', 'publickey'] }))
    expect(order(e)).toEqual(['password', 'keyboard-interactive', 'agent', 'publickey'])
    const e2 = await authError(connect({ ...base(sshd), ...failing(), authOrder: ['agent', 'password', 'publickey', 'keyboard-interactive'] }))
    expect(order(e2)).toEqual(['agent', 'password', 'publickey', 'keyboard-interactive'])
  })

  it('methods left out of authOrder are not tried', async () => {
    let asked = 0
    const e = await authError(connect({
      ...base(sshd), ...failing(),
      keyboardInteractive: (prompts) => { asked++; return prompts.map(() => sshd.password) },
      authOrder: ['password', 'publickey'],
    }))
    expect(order(e)).toEqual(['password', 'publickey'])
    expect(asked).toBe(0)
  })

  it('the first method that succeeds ends the chain', async () => {
    const trace: string[] = []
    let asked = 0
    await login(sshd, {
      privateKeyPath: sshd.userKey.path,
      password: WRONG,
      keyboardInteractive: (prompts) => { asked++; return prompts.map(() => WRONG) },
      authOrder: ['password', 'publickey', 'keyboard-interactive'],
      debug: (l) => trace.push(l),
    })
    expect(trace.filter((l) => /^auth /.test(l)).map((l) => l.replace(/ \(.*\)/, ''))).toEqual(['auth password: rejected', 'auth publickey: accepted'])
    expect(asked).toBe(0)
  })
})
