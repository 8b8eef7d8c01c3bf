import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ConfigError, connect } from '../dist/cjs/index.js'
import { startAgent } from './fixtures/agent.mjs'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let agent: Awaited<ReturnType<typeof startAgent>>

beforeAll(async () => {
  sshd = await startSshd({ config: ['AllowAgentForwarding yes'] })
  agent = await startAgent([sshd.userKey.path])
})
afterAll(async () => {
  await agent?.stop()
  await sshd?.stop()
})

const opts = () => ({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } })

describe('agent forwarding', () => {
  it('agentForward at connect: ssh-add -l on the server lists the forwarded key', async () => {
    const ssh = await connect({ ...opts(), agentForward: agent.socket })
    const r = await ssh.exec('ssh-add -l')
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toContain(sshd.userKey.fingerprint)
    // a second session gets its own forwarded agent too
    const again = await ssh.exec('ssh-add -l')
    expect(again.stdout.toString()).toContain(sshd.userKey.fingerprint)
    await ssh.close()
  })
  it('per call, and not forwarded when not asked', async () => {
    const old = process.env.SSH_AUTH_SOCK
    process.env.SSH_AUTH_SOCK = agent.socket
    try {
      const ssh = await connect(opts())
      const without = await ssh.exec('ssh-add -l')
      expect(without.code).toBe(2) // "Could not open a connection to your authentication agent"
      const withAgent = await ssh.exec('ssh-add -l', { agentForward: true })
      expect(withAgent.stdout.toString()).toContain(sshd.userKey.fingerprint)
      const p = ssh.spawn('ssh-add -l', { agentForward: true })
      let out = ''
      for await (const c of p.stdout) out += c
      expect(out).toContain(sshd.userKey.fingerprint)
      await ssh.close()
    } finally {
      process.env.SSH_AUTH_SOCK = old
    }
  })
  it('agentForward: true without SSH_AUTH_SOCK is a ConfigError', async () => {
    const old = process.env.SSH_AUTH_SOCK
    delete process.env.SSH_AUTH_SOCK
    try {
      await expect(connect({ ...opts(), agentForward: true })).rejects.toBeInstanceOf(ConfigError)
      await expect(connect({ ...opts(), agentForward: 3 as never })).rejects.toBeInstanceOf(ConfigError)
    } finally {
      if (old !== undefined) process.env.SSH_AUTH_SOCK = old
    }
  })
})
