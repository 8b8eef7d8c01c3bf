// What scripts/electron-smoke.mjs checks inside Electron, as a module, so that the same checks
// also run under Node in the test suite (__test__/smoke-checks.test.ts) and do not rot between
// workflow runs: an embedded server on a loopback port and a client against it doing exec,
// 64 MiB through a channel, SFTP both ways and a jump, each result checked.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { connect, createServer, generateKey, KnownHosts } from '../dist/esm/index.mjs'

function check(what, ok) {
  console.log(`${ok ? 'ok' : 'FAILED'}: ${what}`)
  if (!ok) throw new Error(`smoke check failed: ${what}`)
}

/** Runs every check; throws on the first that fails. */
export async function run() {
  const electron = process.versions.electron ? `electron ${process.versions.electron}, ` : ''
  console.log(`${electron}node ${process.versions.node}, ${process.platform}-${process.arch}`)
  const work = mkdtempSync(join(tmpdir(), 'ferrossh-smoke-'))
  const root = join(work, 'sftp-root')
  mkdirSync(root)
  const user = generateKey({ type: 'ed25519' })
  const block = Buffer.alloc(1024 * 1024, 7)
  const server = await createServer({
    auth: { publicKey: (ctx, key) => ctx.user === 'smoke' && key.fingerprint === user.fingerprint },
    exec: async (s) => {
      if (s.command === 'hello') {
        s.stdout.write('hello from the server\n')
        s.stderr.write('and its stderr\n')
        return 3
      }
      if (s.command === 'stream') {
        for (let i = 0; i < 64; i++) if (!s.stdout.write(block)) await new Promise((r) => s.stdout.once('drain', r))
        return 0
      }
      return 127
    },
    sftp: { root },
    forwarding: { direct: true },
  }).listen(0, '127.0.0.1')
  const { port } = server.address()
  const knownHosts = join(work, 'known_hosts')
  KnownHosts.add(knownHosts, '127.0.0.1', port, server.hostKeys[0].publicKey)
  const options = { host: '127.0.0.1', port, username: 'smoke', privateKey: user.privateKey, hostKey: { knownHosts } }
  try {
    const ssh = await connect(options)
    const r = await ssh.exec('hello')
    check('exec: stdout, stderr and exit code', r.stdout.toString() === 'hello from the server\n' && r.stderr.toString() === 'and its stderr\n' && r.code === 3)

    const h = createHash('sha256')
    let n = 0
    for await (const c of ssh.spawn('stream').stdout) {
      n += c.length
      h.update(c)
    }
    const want = createHash('sha256')
    for (let i = 0; i < 64; i++) want.update(block)
    check('64 MiB streamed intact', n === 64 * 1024 * 1024 && h.digest('hex') === want.digest('hex'))

    const sftp = await ssh.sftp()
    const data = randomBytes(8 * 1024 * 1024)
    await sftp.writeFile('/payload.bin', data)
    check('SFTP write then read back', Buffer.compare(await sftp.readFile('/payload.bin'), data) === 0)
    await sftp.close()

    const inner = await ssh.jump(options)
    check('a jump through the server to itself', (await inner.exec('hello')).stdout.toString() === 'hello from the server\n')
    await inner.close()
    await ssh.close()
  } finally {
    await server.close()
    rmSync(work, { recursive: true, force: true })
  }
}
