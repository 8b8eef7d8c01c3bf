import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { AbortError, AuthError, ConfigError, TimeoutError, connect, resolveConfig } from '../dist/cjs/index.js'
import { startAgent } from './fixtures/agent.mjs'
import { keygen, startSshd, type Sshd } from './fixtures/sshd.mjs'

let target: Sshd
let bastion: Sshd
let dir: string
let knownHosts: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-config-'))
  ;[target, bastion] = await Promise.all([startSshd(), startSshd()])
  knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, [...target.knownHostsLines, ...bastion.knownHostsLines].join('\n') + '\n')
})
afterAll(async () => {
  await target?.stop()
  await bastion?.stop()
})

function sshG(file: string, host: string, extra: string[] = []): Record<string, string[]> {
  const out = execFileSync('ssh', ['-G', '-F', file, ...extra, host], { encoding: 'utf8' })
  const m: Record<string, string[]> = {}
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ')
    if (i > 0) (m[line.slice(0, i)] ??= []).push(line.slice(i + 1))
  }
  return m
}

describe('resolveConfig', () => {
  it('agrees with ssh -G', () => {
    const file = join(dir, 'cfg1')
    writeFileSync(file, [
      'Host web-* !web-9',
      '  User deploy',
      '  Port 2201',
      '  IdentityFile /keys/%r-%h',
      'Host *.internal',
      '  ProxyJump bastion.example.com:2222',
      '  ServerAliveInterval 15',
      'Host db',
      '  HostName db.internal',
      '  LocalForward 5433 localhost:5432',
      'Host *',
      '  Ciphers ^aes128-gcm@openssh.com',
      '  UserKnownHostsFile /kh/one /kh/two',
      '',
    ].join('\n'))
    for (const host of ['web-1', 'web-9', 'db', 'x.internal', 'plain']) {
      const ours = resolveConfig(host, { file })
      const theirs = sshG(file, host)
      expect(ours.hostname, host).toBe(theirs.hostname[0])
      expect(ours.user, host).toBe(theirs.user[0])
      expect(String(ours.port), host).toBe(theirs.port[0])
      expect(ours.identityFile.length, host).toBe(theirs.identityfile.length)
      expect(ours.proxyJump, host).toBe(theirs.proxyjump?.[0])
      expect(ours.ciphers, host).toBe(theirs.ciphers[0])
      expect(ours.userKnownHostsFile, host).toEqual(theirs.userknownhostsfile[0].split(' '))
      expect(ours.localForward, host).toEqual(theirs.localforward ?? [])
      expect(String(ours.serverAliveInterval), host).toBe(theirs.serveraliveinterval[0])
    }
    expect(resolveConfig('web-1', { file, user: 'alice', port: 9 })).toMatchObject({ user: 'alice', port: 9 })
  })
  it('malformed lines are ConfigErrors with file and line', () => {
    const file = join(dir, 'bad')
    writeFileSync(file, 'Host a\n  Port notaport\n')
    const e = (() => { try { resolveConfig('a', { file }); return null } catch (x) { return x } })() as ConfigError
    expect(e).toBeInstanceOf(ConfigError)
    expect(e.file).toBe(file)
    expect(e.line).toBe(2)
    expect(() => resolveConfig('a', { file: join(dir, 'missing') })).toThrow(ConfigError)
    expect(() => resolveConfig('')).toThrow(ConfigError)
    const option = (f: () => unknown): string | undefined => { try { f() } catch (e) { expect(e).toBeInstanceOf(ConfigError); return (e as ConfigError).option } return undefined }
    expect(option(() => resolveConfig('a', 'file' as never))).toBe('options')
    expect(option(() => resolveConfig('a', { file: 5 as never }))).toBe('file')
    expect(option(() => resolveConfig('a', { file, user: {} as never }))).toBe('user')
    expect(option(() => resolveConfig('a', { file, port: 0 }))).toBe('port')
    expect(option(() => resolveConfig('a', { file, port: '22' as never }))).toBe('port')
    // null options mean none
    expect(resolveConfig('a', null as never).hostname).toBe('a')
  })
})

describe('sshConfig in connect()', () => {
  it('takes HostName, Port, User, IdentityFile, UserKnownHostsFile and ProxyJump from the file; options win', async () => {
    const file = join(dir, 'cfg-connect')
    writeFileSync(file, [
      'Host app',
      '  HostName 127.0.0.1',
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  IdentityFile ${target.userKey.path}`,
      `  UserKnownHostsFile ${knownHosts}`,
      'Host via-bastion',
      '  HostName 127.0.0.1',
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  IdentityFile ${target.userKey.path}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '  ProxyJump jump',
      'Host jump',
      '  HostName 127.0.0.1',
      `  Port ${bastion.port}`,
      `  User ${bastion.user}`,
      `  IdentityFile ${bastion.userKey.path}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '',
    ].join('\n'))
    const ssh = await connect({ host: 'app', sshConfig: file })
    expect((await ssh.exec('echo from-config')).stdout.toString()).toBe('from-config\n')
    await ssh.close()
    const before = bastion.log().split('\n').filter((l) => /direct-tcpip|server_request_direct_tcpip/.test(l)).length
    const viaJump = await connect({ host: 'via-bastion', sshConfig: file })
    expect((await viaJump.exec('echo through-jump')).stdout.toString()).toBe('through-jump\n')
    await viaJump.close()
    const after = bastion.log().split('\n').filter((l) => /direct-tcpip|server_request_direct_tcpip/.test(l)).length
    expect(after).toBeGreaterThan(before)
    // an explicit option wins over the file
    await expect(connect({ host: 'app', sshConfig: file, port: 1, connectTimeout: 2000 })).rejects.toMatchObject({ code: 'ERR_SSH_CONNECT' })
  })
  it('IdentityAgent $NAME reads the socket path from that environment variable, as ssh does', async () => {
    const agent = await startAgent([target.userKey.path])
    const file = join(dir, 'cfg-identity-agent')
    writeFileSync(file, [
      'Host agent-app',
      '  HostName 127.0.0.1',
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '  IdentityAgent $FERROSSH_TEST_AGENT',
      '',
    ].join('\n'))
    const saved = process.env.FERROSSH_TEST_AGENT
    process.env.FERROSSH_TEST_AGENT = agent.socket
    try {
      const ssh = await connect({ host: 'agent-app', sshConfig: file })
      expect((await ssh.exec('echo by-agent')).stdout.toString()).toBe('by-agent\n')
      await ssh.close()
    } finally {
      if (saved === undefined) delete process.env.FERROSSH_TEST_AGENT
      else process.env.FERROSSH_TEST_AGENT = saved
      await agent.stop()
    }
  })
  it('IdentityAgent none, and IdentitiesOnly yes without an identity file, keep the agent out, and no default key is added to what the file gives', async () => {
    // an agent and a default ~/.ssh/id_ed25519 that would both log in
    const agent = await startAgent([target.userKey.path])
    const home = mkdtempSync(join(tmpdir(), 'ferrossh-config-home-'))
    mkdirSync(join(home, '.ssh'))
    copyFileSync(target.userKey.path, join(home, '.ssh', 'id_ed25519'))
    const saved = { SSH_AUTH_SOCK: process.env.SSH_AUTH_SOCK, HOME: process.env.HOME }
    process.env.SSH_AUTH_SOCK = agent.socket
    process.env.HOME = home
    try {
      for (const line of ['IdentityAgent none', 'IdentitiesOnly yes']) {
        const file = join(dir, 'cfg-no-agent')
        writeFileSync(file, [
          'Host no-agent',
          '  HostName 127.0.0.1',
          `  Port ${target.port}`,
          `  User ${target.user}`,
          `  UserKnownHostsFile ${knownHosts}`,
          `  ${line}`,
          `  IdentityFile ${join(dir, 'no-such-key')}`,
          '',
        ].join('\n'))
        const e = await connect({ host: 'no-agent', sshConfig: file, connectTimeout: 5000 }).catch((x: unknown) => x)
        expect(e, line).toBeInstanceOf(AuthError)
        expect((e as AuthError).attempts.filter((a) => a.method !== 'none'), line).toEqual([])
      }
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k]
        else process.env[k] = v
      }
      await agent.stop()
    }
  })
  describe("the agent's copies of the IdentityFiles", () => {
    let agent: Awaited<ReturnType<typeof startAgent>>
    let d: string
    const strangers: string[] = []
    const saved = process.env.SSH_AUTH_SOCK
    beforeAll(async () => {
      d = mkdtempSync(join(tmpdir(), 'ferrossh-config-agent-ids-'))
      // five keys the server does not know, listed before the one it does: offered in the
      // agent's order, the right one would come after ssh's limit of five agent keys
      for (let i = 0; i < 5; i++) strangers.push(keygen(join(d, `stranger${i}`), 'ed25519').path)
      agent = await startAgent([...strangers, target.userKey.path])
      mkdirSync(join(d, 'pub'))
      // the public halves alone, as a password manager's or a hardware token's agent setup keeps them
      copyFileSync(`${target.userKey.path}.pub`, join(d, 'pub', 'id_target.pub'))
      copyFileSync(`${strangers[0]}.pub`, join(d, 'pub', 'id_stranger.pub'))
      const other = keygen(join(d, 'not-in-agent'), 'ed25519').path
      copyFileSync(`${other}.pub`, join(d, 'pub', 'id_other.pub'))
      // a passphrase-protected copy of the key the agent holds, opened by nobody here
      copyFileSync(target.userKey.path, join(d, 'id_locked'))
      chmodSync(join(d, 'id_locked'), 0o600)
      execFileSync('ssh-keygen', ['-q', '-p', '-P', '', '-N', 'locked away', '-f', join(d, 'id_locked')])
      delete process.env.SSH_AUTH_SOCK
    })
    afterAll(async () => {
      if (saved === undefined) delete process.env.SSH_AUTH_SOCK
      else process.env.SSH_AUTH_SOCK = saved
      await agent?.stop()
    })
    const configWith = (name: string, lines: string[]): string => {
      const file = join(d, name)
      writeFileSync(file, [
        'Host agent-ids',
        '  HostName 127.0.0.1',
        `  Port ${target.port}`,
        `  User ${target.user}`,
        `  UserKnownHostsFile ${knownHosts}`,
        `  IdentityAgent ${agent.socket}`,
        ...lines.map((l) => `  ${l}`),
        '',
      ].join('\n'))
      return file
    }
    const fromAgent = (e: AuthError) => e.attempts.filter((a) => a.detail?.includes(' from agent '))
    const login = async (file: string): Promise<void> => {
      const ssh = await connect({ host: 'agent-ids', sshConfig: file, connectTimeout: 5000 })
      expect((await ssh.exec('echo by-agent')).stdout.toString()).toBe('by-agent\n')
      await ssh.close()
    }

    it("IdentitiesOnly yes with a .pub IdentityFile signs with the agent's copy of that key, and offers no other agent key", async () => {
      await login(configWith('cfg-pub-only', ['IdentitiesOnly yes', `IdentityFile ${join(d, 'pub', 'id_target.pub')}`]))
      // the private key's path, with only its .pub there
      await login(configWith('cfg-pub-beside', ['IdentitiesOnly yes', `IdentityFile ${join(d, 'pub', 'id_target')}`]))
      const e = await connect({ host: 'agent-ids', sshConfig: configWith('cfg-pub-stranger', ['IdentitiesOnly yes', `IdentityFile ${join(d, 'pub', 'id_stranger.pub')}`]), connectTimeout: 5000 }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(AuthError)
      expect(fromAgent(e as AuthError)).toHaveLength(1)
    })

    it('a .pub IdentityFile the agent does not hold is skipped as not loaded', async () => {
      const pub = join(d, 'pub', 'id_other.pub')
      const e = await connect({ host: 'agent-ids', sshConfig: configWith('cfg-pub-missing', ['IdentitiesOnly yes', `IdentityFile ${pub}`]), connectTimeout: 5000 }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(AuthError)
      expect((e as AuthError).attempts.filter((a) => a.method !== 'none')).toEqual([{ method: 'publickey', outcome: 'not loaded: the agent does not hold this key', detail: pub }])
    })

    it('IdentitiesOnly yes with a private key file whose key is in the agent: the agent signs for it', async () => {
      await login(configWith('cfg-locked', ['IdentitiesOnly yes', `IdentityFile ${join(d, 'id_locked')}`]))
    })

    it("without IdentitiesOnly, the agent's copies of the IdentityFiles are offered before its other keys", async () => {
      await login(configWith('cfg-pub-first', [`IdentityFile ${join(d, 'pub', 'id_target.pub')}`]))
    })
  })
  it('a relative IdentityFile is opened from the working directory, as ssh opens it', async () => {
    const work = mkdtempSync(join(tmpdir(), 'ferrossh-config-cwd-'))
    mkdirSync(join(work, 'keys'))
    copyFileSync(target.userKey.path, join(work, 'keys', 'id_test'))
    const file = join(dir, 'cfg-relative-identity')
    writeFileSync(file, [
      'Host relative-id',
      '  HostName 127.0.0.1',
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  UserKnownHostsFile ${knownHosts}`,
      '  IdentitiesOnly yes',
      '  IdentityFile keys/id_test',
      '',
    ].join('\n'))
    const cwd = process.cwd()
    process.chdir(work)
    try {
      const ssh = await connect({ host: 'relative-id', sshConfig: file, connectTimeout: 5000 })
      expect((await ssh.exec('echo relative')).stdout.toString()).toBe('relative\n')
      await ssh.close()
    } finally {
      process.chdir(cwd)
    }
  })
  it("a route given to connect() replaces the file's, and the caller's user and alias reach the proxy command's tokens", async () => {
    const file = join(dir, 'cfg-routes')
    writeFileSync(file, [
      'Host routed',
      '  HostName 127.0.0.1',
      `  Port ${target.port}`,
      `  User ${target.user}`,
      `  IdentityFile ${target.userKey.path}`,
      `  UserKnownHostsFile ${knownHosts}`,
      // the file's own route would fail at once, and tells what it was given
      `  ProxyCommand sh -c 'echo "n=%n h=%h r=%r" >&2; exit 3'`,
      '',
    ].join('\n'))
    const e = await connect({ host: 'routed', sshConfig: file, user: 'someone-else', connectTimeout: 5000 }).catch((x: unknown) => x)
    expect(e).toMatchObject({ code: 'ERR_SSH_PROXY' })
    expect(String((e as { stderr?: string }).stderr)).toContain('n=routed h=127.0.0.1 r=someone-else')
    // an explicit proxy command wins over the file's
    const ssh = await connect({ host: 'routed', sshConfig: file, proxyCommand: 'nc %h %p' })
    expect((await ssh.exec('echo routed')).stdout.toString()).toBe('routed\n')
    await ssh.close()
  })
  it('a broken file fails connect with ConfigError', async () => {
    const file = join(dir, 'broken')
    writeFileSync(file, 'Host app\n  Match nonsense\n')
    await expect(connect({ host: 'app', sshConfig: file })).rejects.toBeInstanceOf(ConfigError)
    await expect(connect({ host: 'app', sshConfig: 42 as never })).rejects.toBeInstanceOf(ConfigError)
  })
  it('a Match exec command runs off the event loop, and an abort or the connect timeout kills it', async () => {
    const file = join(dir, 'cfg-slow-exec')
    const pidFile = join(dir, 'exec.pid')
    // the command records its shell's pid, then waits far longer than the test
    writeFileSync(file, `Match exec "echo $$ > ${pidFile}; sleep 30"\n  User nobody-here\n`)
    let ticks = 0
    const timer = setInterval(() => ticks++, 20)
    try {
      const ac = new AbortController()
      setTimeout(() => ac.abort(), 400)
      const started = Date.now()
      const e = await connect({ host: '127.0.0.1', port: target.port, sshConfig: file, signal: ac.signal }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(AbortError)
      expect(Date.now() - started).toBeLessThan(3000)
      // the event loop kept turning while the command ran
      expect(ticks).toBeGreaterThan(5)
      const pid = Number(readFileSync(pidFile, 'utf8'))
      await new Promise((r) => setTimeout(r, 200))
      expect(() => process.kill(pid, 0)).toThrow()
      const t0 = Date.now()
      const te = await connect({ host: '127.0.0.1', port: target.port, sshConfig: file, connectTimeout: 500 }).catch((x: unknown) => x)
      expect(te).toBeInstanceOf(TimeoutError)
      expect(Date.now() - t0).toBeLessThan(3000)
    } finally {
      clearInterval(timer)
    }
  })
  it('host and user names a shell would act on are refused before any command runs, as ssh refuses them', async () => {
    const marker = join(dir, 'pwned')
    const file = join(dir, 'cfg-exec-host')
    writeFileSync(file, 'Match exec "test %h = never"\n  User x\n')
    const evil = `$(touch${'${IFS}'}${marker})127.0.0.1`
    // through a proxy command's %h, %n and %r, through Match exec's %h, through resolveConfig
    const attempts: (() => Promise<unknown>)[] = [
      () => connect({ host: evil, port: target.port, proxyCommand: 'nc %h %p', connectTimeout: 5000 }),
      () => connect({ host: evil, port: target.port, sshConfig: file, connectTimeout: 5000 }),
      () => connect({ host: '127.0.0.1', port: target.port, username: `$(touch${'${IFS}'}${marker})`, proxyCommand: 'nc %h %p # %r', connectTimeout: 5000 }),
      () => connect({ host: '-oProxyCommand=x', port: target.port, connectTimeout: 5000 }),
      () => connect({ host: 'ok-host', proxyJump: `x@a;touch${'${IFS}'}${marker}`, connectTimeout: 5000 }),
    ]
    for (const a of attempts) {
      const e = await a().catch((x: unknown) => x)
      expect(e).toBeInstanceOf(ConfigError)
      expect((e as Error).message).toMatch(/characters a shell would act on|starts with '-'/)
    }
    expect(() => resolveConfig(`a;touch ${marker}`, { file })).toThrow(ConfigError)
    expect(() => resolveConfig('h', { file, user: 'a`touch x`' })).toThrow(ConfigError)
    expect(existsSync(marker)).toBe(false)
    // real names still pass: IPv6 with a zone, a bracketed literal, a domain user
    expect(resolveConfig('fe80::1%eth0', { file: '/dev/null' }).hostname).toBe('fe80::1%eth0')
    expect(resolveConfig('[::1]', { file: '/dev/null', user: 'CORP\\deploy' }).user).toBe('CORP\\deploy')
  })
  it('a configuration path that names something endless is refused, not read into memory', async () => {
    const t0 = Date.now()
    await expect(connect({ host: '127.0.0.1', port: target.port, sshConfig: '/dev/zero', connectTimeout: 5000 })).rejects.toBeInstanceOf(ConfigError)
    expect(() => resolveConfig('h', { file: '/dev/zero' })).toThrow(ConfigError)
    expect(Date.now() - t0).toBeLessThan(5000)
  })
  it('an algorithm list in the file that names nothing we support is a ConfigError, not our defaults', async () => {
    const file = join(dir, 'cfg-algos')
    writeFileSync(file, `Host pq\n  HostName 127.0.0.1\n  Port ${target.port}\n  KexAlgorithms sntrup761x25519-sha512@openssh.com\n`)
    const e = await connect({ host: 'pq', sshConfig: file, connectTimeout: 5000 }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).option).toBe('kexAlgorithms')
    expect((e as Error).message).toMatch(/sntrup761x25519-sha512@openssh.com/)
  })
  it('resolveConfig refuses options it does not know', () => {
    expect(() => resolveConfig('h', { fle: '/dev/null' } as never)).toThrow(/unknown option 'fle'/)
  })
})
