import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { connect } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd

beforeAll(async () => {
  sshd = await startSshd({ config: ['MaxSessions 50'] })
})
afterAll(async () => {
  await sshd?.stop()
})

const activeHandles = (): number => (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length

describe('native resources', () => {
  it('1000 connect/exec/spawn/close cycles leave memory and handles where they were', async () => {
    const opts = { host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } }
    const cycle = async (): Promise<void> => {
      const ssh = await connect(opts)
      const r = await ssh.exec('echo x')
      if (r.stdout.toString() !== 'x\n') throw new Error('bad output')
      const p = ssh.spawn('cat')
      p.stdin.end('y')
      for await (const _ of p.stdout) { /* drain */ }
      await p.exited
      await ssh.close()
    }
    for (let i = 0; i < 50; i++) await cycle() // warm-up: allocator pools, JIT
    global.gc?.()
    const handlesBefore = activeHandles()
    const rssBefore = process.memoryUsage().rss
    for (let i = 0; i < 1000; i++) await cycle()
    global.gc?.()
    await new Promise((r) => setTimeout(r, 200))
    const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024
    expect(activeHandles()).toBeLessThanOrEqual(handlesBefore)
    expect(grown).toBeLessThan(64)
  }, 300_000)
})
