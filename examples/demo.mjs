// The main job, end to end on this machine: starts a throwaway OpenSSH sshd on a loopback
// port (generated keys, strict host key checking against its own known_hosts), then uses
// ferrossh as an application would.
import { createHash } from 'node:crypto'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'

import { connect, SshError } from '../dist/esm/index.mjs'
import { sshdUnavailableReason, startSshd } from '../__test__/fixtures/sshd.mjs'

const why = sshdUnavailableReason()
if (why) {
  console.error(`demo: ${why}`)
  process.exit(1)
}

const sshd = await startSshd()
const step = (s) => console.log(`\n▸ ${s}`)
try {
  step(`connect to ${sshd.user}@${sshd.host}:${sshd.port} (host key checked against ${sshd.knownHostsFile})`)
  const ssh = await connect({
    host: sshd.host, port: sshd.port, username: sshd.user,
    privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile },
  })
  console.log('  host key:', ssh.hostKey.algorithm, ssh.hostKey.fingerprint)
  console.log('  algorithms:', ssh.algorithms.kex, ssh.algorithms.cipher)

  step('exec: uname -a')
  const r = await ssh.exec('uname -a')
  console.log('  code', r.code, '→', r.stdout.toString().trim())

  step('exec with stdin, env and a failing status (check: true)')
  const e = await ssh.exec('cat; echo " $FERROSSH_DEMO"; exit 7', { stdin: 'from stdin', env: { FERROSSH_DEMO: 'env ok' }, check: true }).catch((x) => x)
  console.log(`  ${e instanceof SshError ? e.code : 'no error?'}: exitCode ${e.exitCode}, stdout ${JSON.stringify(e.stdout.toString())}`)

  step('spawn: stream 256 MiB from the server into a hash, then kill a sleeping process')
  const t = process.hrtime.bigint()
  const p = ssh.spawn('head -c 268435456 /dev/zero')
  const hash = createHash('sha256')
  await pipeline(p.stdout, new Writable({ write(c, _e, cb) { hash.update(c); cb() } }))
  const secs = Number(process.hrtime.bigint() - t) / 1e9
  console.log(`  ${(256 / secs).toFixed(0)} MiB/s, exit`, await p.exited, 'sha256', hash.digest('hex').slice(0, 16) + '…')
  const sleeper = ssh.spawn('sleep 60')
  setTimeout(() => sleeper.kill('TERM'), 200)
  console.log('  sleep 60 ended by', await sleeper.exited)

  step('wrong password: a typed AuthError that says what was tried')
  const bad = await connect({ host: sshd.host, port: sshd.port, username: sshd.user, password: 'not-the-password', hostKey: { knownHosts: sshd.knownHostsFile } }).catch((x) => x)
  console.log(`  ${bad.name} (${bad.code}): ${bad.message}`)

  await ssh.close()
  step('closed; the process exits on its own')
} finally {
  await sshd.stop()
}
