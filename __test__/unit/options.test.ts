import { describe, expect, it } from 'vitest'

import net from 'node:net'

import { ConfigError, connect, SshClient, TimeoutError } from '../../dist/cjs/index.js'

async function configError(options: unknown, re: RegExp, option?: string) {
  const e = await connect(options as never).then(() => null, (err: unknown) => err)
  expect(e).toBeInstanceOf(ConfigError)
  expect((e as ConfigError).code).toBe('ERR_SSH_CONFIG')
  expect((e as Error).message).toMatch(re)
  if (option) expect((e as ConfigError).option).toBe(option)
}

describe('connect() rejects bad options with ConfigError before touching the network', () => {
  it('needs an object and a host', async () => {
    await configError(undefined, /options object/)
    await configError({}, /host.*required/, 'host')
    await configError({ host: 42 }, /host.*string/, 'host')
  })
  it('suggests the intended name for an unknown option', async () => {
    await configError({ host: 'h', usernme: 'x' }, /unknown option 'usernme'; did you mean 'username'/, 'usernme')
  })
  it('checks transports', async () => {
    await configError({ host: 'h', sock: {} }, /sock.*Duplex/, 'sock')
    await configError({ host: 'h', sock: { write() {}, on() {}, end() {} } }, /sock.*Duplex/, 'sock')
    await configError({ host: 'h', proxy: 'ftp://x:1', password: 'p' }, /proxy/, 'proxy')
    await configError({ host: 'h', proxy: 'socks5://p:1', proxyCommand: 'nc %h %p' }, /either proxy or proxyCommand/, 'proxy')
    await configError({ host: 'h', proxyCommand: '  ' }, /proxyCommand/, 'proxyCommand')
    await configError({ host: 'h', proxyJump: 'a@', password: 'p' }, /proxyJump/, 'proxyJump')
    await configError({ host: 'h', proxyJump: 'b:99999' }, /proxyJump/, 'proxyJump')
    await configError({ host: 'h', proxyJump: 'b', proxy: 'socks5://p:1' }, /proxyJump/, 'proxyJump')
  })
  it.each([0, 65536, -1, 1.5, '22', NaN])('port %s is out of range', async (port) => {
    await configError({ host: 'h', port }, /port/, 'port')
  })
  it('refuses unknown or conflicting host key options and disagreeing user names', async () => {
    await configError({ host: 'h', hostKey: { knownHosts: '/x', acceptnew: true } }, /unknown option/, 'hostKey.acceptnew')
    await configError({ host: 'h', hostKey: { fingerprint: 'SHA256:' + 'A'.repeat(43), extra: 1 } }, /unknown option/, 'hostKey.extra')
    await configError({ host: 'h', hostKey: { knownHosts: '/x', fingerprint: 'SHA256:' + 'A'.repeat(43) } }, /give one of/, 'hostKey')
    await configError({ host: 'h', username: 'a', user: 'b' }, /disagree/, 'user')
    await configError({ host: 'h', username: 'a', user: Symbol('x') }, /user/, 'user')
  })
  it('checks key, password and host key shapes', async () => {
    await configError({ host: 'h', privateKey: 12 }, /privateKey/, 'privateKey')
    await configError({ host: 'h', privateKeyPath: '/nonexistent/id_ed25519' }, /no such file/, 'privateKeyPath')
    await configError({ host: 'h', password: Buffer.from('x') }, /password.*string/, 'password')
    await configError({ host: 'h', hostKey: 'accept-everything' }, /hostKey/, 'hostKey')
    await configError({ host: 'h', hostKey: { fingerprint: 'md5:aa' } }, /fingerprint/, 'hostKey.fingerprint')
    await configError({ host: 'h', hostKey: { knownHosts: [] } }, /knownHosts/, 'hostKey.knownHosts')
    await configError({ host: 'h', hostKey: { verify: 'yes' } }, /verify/, 'hostKey.verify')
    await configError({ host: 'h', keyboardInteractive: 'pw' }, /keyboardInteractive/, 'keyboardInteractive')
    await configError({ host: 'h', authOrder: ['telepathy'] }, /authOrder/, 'authOrder')
    await configError({ host: 'h', agent: 5 }, /agent/, 'agent')
    await configError({ host: 'h', certificate: 'x' }, /certificate.*needs the private key/, 'certificate')
    await configError({ host: 'h', certificatePath: '/nonexistent-cert.pub', privateKey: 'k' }, /no such file/, 'certificatePath')
  })
  it('takes only true or false for boolean host key options: the string "false" is not false', async () => {
    for (const v of ['false', 'no', 1, {}]) {
      await configError({ host: 'h', hostKey: { knownHosts: '/x', acceptNew: v } }, /acceptNew: must be true or false/, 'hostKey.acceptNew')
      await configError({ host: 'h', hostKey: { knownHosts: '/x', hash: v } }, /hash: must be true or false/, 'hostKey.hash')
    }
  })
  it('refuses a password sshd would drop the connection over, without quoting it', async () => {
    const secret = 'hunter2-secret'
    for (const pw of [`${secret}\0x`, secret + 'x'.repeat(300 * 1024)]) {
      const e = await connect({ host: 'h', password: pw }).then(() => null, (err: unknown) => err as ConfigError)
      expect(e).toBeInstanceOf(ConfigError)
      expect(e!.option).toBe('password')
      expect(e!.message).toMatch(/the password (contains a NUL byte|is longer than)/)
      expect(e!.message).not.toContain(secret)
    }
  })
  it('a proxyJump hop with bad options fails before the first hop is dialled', async () => {
    // the first hop is a port nobody listens on: dialling it first would be a ProxyError instead
    const e = await connect({ host: '127.0.0.1', password: 'x', proxyJump: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', connectTimeout: -1 }] }).then(() => null, (err: unknown) => err)
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as Error).message).toMatch(/hop 1 .*connectTimeout/)
    await configError({ host: '127.0.0.1', password: 'x', proxyJump: [{ host: '127.0.0.1', port: 1 }, 42] }, /hop 1 must be/, 'proxyJump')
  })
  it('rounds a fractional time up: 0.5 ms is never the 0 that means none, nor a 0 ms timer', async () => {
    // a server that accepts and never speaks: only the timeout ends the wait
    const silent = net.createServer((c) => c.on('error', () => {}))
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    try {
      const port = (silent.address() as net.AddressInfo).port
      const e = await connect({ host: '127.0.0.1', port, password: 'x', hostKey: 'insecure-accept-any', connectTimeout: 1.5 }).then(() => null, (err: unknown) => err as Error)
      expect(e).toBeInstanceOf(TimeoutError)
      expect(e!.message).toMatch(/after 2 ms/)
    } finally {
      silent.close()
    }
  })
  it('checks timeouts, limits, algorithms and signal', async () => {
    await configError({ host: 'h', connectTimeout: -5 }, /connectTimeout/, 'connectTimeout')
    await configError({ host: 'h', keepaliveCountMax: 0 }, /keepaliveCountMax/, 'keepaliveCountMax')
    await configError({ host: 'h', maxSessions: 0 }, /maxSessions/, 'maxSessions')
    await configError({ host: 'h', algorithms: { cipher: 5 } }, /algorithms.cipher/, 'algorithms.cipher')
    await configError({ host: 'h', algorithms: { ciphers: ['x'] } }, /unknown algorithm list/, 'algorithms.ciphers')
    await configError({ host: 'h', signal: {} }, /AbortSignal/, 'signal')
  })
  it('rejects garbage key material with a clear message', async () => {
    await configError({ host: '127.0.0.1', port: 1, privateKey: 'not a key at all', hostKey: 'insecure-accept-any' }, /privateKey/, 'privateKey')
  })
  it('rejects unknown algorithm names (checked natively)', async () => {
    await configError({ host: '127.0.0.1', port: 1, password: 'x', hostKey: 'insecure-accept-any', algorithms: { cipher: ['rot13'] } }, /rot13/)
  })
  it('builder produces the same options', () => {
    const o = SshClient.builder().host('h').port(2222).user('u').identityFile('~/k', 'pp').knownHosts('/kh', { acceptNew: true }).build()
    expect(o).toEqual({ host: 'h', port: 2222, username: 'u', privateKeyPath: '~/k', passphrase: 'pp', hostKey: { knownHosts: '/kh', acceptNew: true } })
  })
})
