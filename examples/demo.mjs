// The main job, end to end, with nothing to set up: an embedded ferrossh server on an
// ephemeral loopback port (generated host key, public-key auth, a built-in SFTP root), and
// the ferrossh client using it as an application would.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'

import { connect, createServer, generateKey, KnownHosts } from '../dist/esm/index.mjs'

const step = (s) => console.log(`\n▸ ${s}`)
const work = mkdtempSync(join(tmpdir(), 'ferrossh-demo-'))
const root = join(work, 'sftp-root')
mkdirSync(root)

function bar(label) {
  let last = -1
  return ({ transferred, total }) => {
    const pct = total ? Math.floor((transferred / total) * 100) : 100
    if (pct === last) return
    last = pct
    const filled = Math.round(pct / 4)
    process.stdout.write(`\r  ${label} [${'#'.repeat(filled)}${'.'.repeat(25 - filled)}] ${String(pct).padStart(3)}%`)
    if (pct === 100) process.stdout.write('\n')
  }
}

// the user's key, as `ssh-keygen` would make it
const user = generateKey({ type: 'ed25519', comment: 'demo@ferrossh' })

const server = await createServer({
  auth: { publicKey: (ctx, key) => ctx.user === 'demo' && key.fingerprint === user.fingerprint },
  exec: async (s) => {
    if (s.command === 'uname -a') {
      s.stdout.write(`ferrossh embedded server (${process.platform} ${process.arch})\n`)
      return 0
    }
    if (s.command.startsWith('count ')) {
      for (let i = 1; i <= Number(s.command.slice(6)); i++) {
        s.stdout.write(`line ${i}\n`)
        await new Promise((r) => setTimeout(r, 50))
      }
      return 0
    }
    if (s.command === 'stream') {
      // 64 MiB through the data path
      const chunk = Buffer.alloc(1024 * 1024, 7)
      for (let i = 0; i < 64; i++) if (!s.stdout.write(chunk)) await new Promise((r) => s.stdout.once('drain', r))
      return 0
    }
    s.stderr.write(`unknown command: ${s.command}\n`)
    return 127
  },
  sftp: { root },
  forwarding: { direct: true },
}).listen(0, '127.0.0.1')
const { port } = server.address()
console.log(`embedded server listening on 127.0.0.1:${port}`)

// trust its host key as a known_hosts file would (strict checking stays on)
const knownHosts = join(work, 'known_hosts')
KnownHosts.add(knownHosts, '127.0.0.1', port, server.hostKeys[0].publicKey)

// an echo service the port forward will reach
const echo = net.createServer((s) => s.pipe(s)).listen(0, '127.0.0.1')
await new Promise((r) => echo.once('listening', r))

const options = { host: '127.0.0.1', port, username: 'demo', privateKey: user.privateKey, hostKey: { knownHosts } }
try {
  step('connect (host key verified against known_hosts)')
  const ssh = await connect(options)
  console.log('  host key:', ssh.hostKey.algorithm, ssh.hostKey.fingerprint)
  console.log('  algorithms:', ssh.algorithms.kex, ssh.algorithms.cipher)

  step('exec')
  const r = await ssh.exec('uname -a')
  console.log(`  exit ${r.code}: ${r.stdout.toString().trim()}`)

  step('a streamed command (spawn)')
  const p = ssh.spawn('count 5')
  p.stdout.on('data', (d) => process.stdout.write(`  ${d}`))
  console.log('  ended:', await p.exited)

  step('64 MiB through a channel into a hash')
  const t = process.hrtime.bigint()
  const h = createHash('sha256')
  await pipeline(ssh.spawn('stream').stdout, new Writable({ write(c, _e, cb) { h.update(c); cb() } }))
  console.log(`  ${(64 / (Number(process.hrtime.bigint() - t) / 1e9)).toFixed(0)} MiB/s, sha256 ${h.digest('hex').slice(0, 16)}…`)

  step('SFTP upload and download with progress')
  const sftp = await ssh.sftp()
  const local = join(work, 'payload.bin')
  const data = randomBytes(32 * 1024 * 1024)
  writeFileSync(local, data)
  await sftp.mkdir('/inbox', { recursive: true })
  await sftp.upload(local, '/inbox/payload.bin', { onProgress: bar('upload  ') })
  await sftp.download('/inbox/payload.bin', join(work, 'back.bin'), { onProgress: bar('download') })
  const same = createHash('sha256').update(readFileSync(join(work, 'back.bin'))).digest('hex') === createHash('sha256').update(data).digest('hex')
  console.log('  round trip intact:', same, '— remote listing:', await sftp.readdir('/inbox'))
  await sftp.close()

  step('local port forward (ssh -L) to an echo service')
  const fwd = await ssh.forwardLocal({ localPort: 0, remoteHost: '127.0.0.1', remotePort: echo.address().port })
  const reply = await new Promise((resolve, reject) => {
    const s = net.connect(fwd.localPort, '127.0.0.1', () => s.end('ping through the tunnel'))
    let got = ''
    s.on('data', (d) => { got += d })
    s.on('end', () => resolve(got))
    s.on('error', reject)
  })
  console.log(`  127.0.0.1:${fwd.localPort} → echoed ${JSON.stringify(reply)}`)
  await fwd.close()

  step('a jump through the server to itself (like ssh -J)')
  const inner = await ssh.jump(options)
  console.log('  through the jump:', (await inner.exec('uname -a')).stdout.toString().trim())
  await inner.close()

  await ssh.close()
  step('done; the server closes and the process exits on its own')
} finally {
  echo.close()
  await server.close()
  rmSync(work, { recursive: true, force: true })
}
