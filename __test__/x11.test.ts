import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { ConfigError, connect } from '../dist/cjs/index.js'
import { startSshd, type Sshd } from './fixtures/sshd.mjs'

let sshd: Sshd
let dir: string

beforeAll(async () => {
  sshd = await startSshd({ config: ['X11Forwarding yes', 'X11UseLocalhost yes', 'X11DisplayOffset 10'] })
  dir = mkdtempSync(join(tmpdir(), 'ferrossh-x11-'))
})
afterAll(async () => {
  await sshd?.stop()
  rmSync(dir, { recursive: true, force: true })
})

// A remote X client: takes the (fake) cookie sshd stored with xauth, sends an X11 setup
// packet with it to $DISPLAY and prints what the "X server" answers.
const REMOTE_CLIENT = `python3 - <<'PY'
import os, socket, struct, subprocess
d = os.environ["DISPLAY"]
cookie = bytes.fromhex(subprocess.check_output(["xauth", "list", d]).split()[-1].decode())
host, num = d.rsplit(":", 1)
s = socket.create_connection((host or "localhost", 6000 + int(num.split(".")[0])))
name = b"MIT-MAGIC-COOKIE-1"
pad = lambda b: b + b"\\0" * (-len(b) % 4)
s.sendall(struct.pack("<cxHHHHxx", b"l", 11, 0, len(name), len(cookie)) + pad(name) + pad(cookie) + b"tail")
print(s.recv(100).decode(), flush=True)
PY`

describe('x11 forwarding', () => {
  it('forwards X11 connections to the local display with the real cookie', async () => {
    const real = randomBytes(16)
    const socketPath = join(dir, 'X42')
    const received: Buffer[] = []
    const server = net.createServer((s) => {
      s.on('error', () => {})
      s.on('data', (d) => {
        received.push(d)
        const all = Buffer.concat(received)
        if (all.length >= 12 + 20 + 16 + 4) s.end('hello from X')
      })
    })
    await new Promise<void>((r) => server.listen(socketPath, r))
    try {
      const ssh = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } })
      const r = await ssh.exec(`echo "DISPLAY=$DISPLAY"; ${REMOTE_CLIENT}`, { x11: { display: socketPath, cookie: real.toString('hex') } })
      expect(r.stderr.toString()).not.toContain('Traceback')
      expect(r.stdout.toString()).toMatch(/DISPLAY=localhost:1\d\.0/)
      expect(r.stdout.toString()).toContain('hello from X')
      const setup = Buffer.concat(received)
      expect(setup.subarray(12, 30).toString()).toBe('MIT-MAGIC-COOKIE-1')
      expect(setup.subarray(32, 48).equals(real)).toBe(true) // the fake cookie was replaced
      expect(setup.subarray(48, 52).toString()).toBe('tail')
      await ssh.close()
    } finally {
      server.close()
    }
  })
  it('needs a display', async () => {
    const ssh = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } })
    const old = process.env.DISPLAY
    delete process.env.DISPLAY
    try {
      await expect(ssh.exec('true', { x11: true })).rejects.toBeInstanceOf(ConfigError)
      await expect(ssh.exec('true', { x11: { display: 'nonsense' } })).rejects.toBeInstanceOf(ConfigError)
      await expect(ssh.exec('true', { x11: { display: ':0', cookie: 'xyz' } })).rejects.toBeInstanceOf(ConfigError)
      await expect(ssh.exec('true', { x11: { display: ':0', cookie: '00', single: 'yes' as never } })).rejects.toMatchObject({ option: 'x11.single', message: 'x11.single: must be a boolean, got string' })
      await expect(ssh.exec('true', { x11: { display: ':0', cookie: '00', screen: -1 } })).rejects.toMatchObject({ option: 'x11.screen', message: 'x11.screen: must be an integer between 0 and 65535, got -1' })
      await expect(ssh.exec('true', { x11: { display: ':0', cookie: '00', screen: '1' as never } })).rejects.toMatchObject({ option: 'x11.screen' })
      expect(() => ssh.spawn('true', { x11: { display: ':0', cookie: '00', screen: 1.5 } })).toThrow(ConfigError)
      // the connection is untouched
      expect((await ssh.exec('echo ok')).stdout.toString()).toBe('ok\n')
    } finally {
      if (old !== undefined) process.env.DISPLAY = old
      await ssh.close()
    }
  })
})
