import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { cpSync, copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

import { startSshd, type Sshd } from './fixtures/sshd.mjs'
import { nodeBinary, smokeNodes } from './fixtures/nodes.mjs'

const root = resolve(__dirname, '..')
const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}`
let sshd: Sshd
let work: string

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } })
}

beforeAll(async () => {
  sshd = await startSshd()
  work = mkdtempSync(join(tmpdir(), 'ferrossh-pack-'))
})
afterAll(async () => {
  await sshd?.stop()
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('npm pack', () => {
  // On linux-x64 the installed package also runs under the oldest Node `engines` admits and the
  // other supported majors (real binaries from the registry, see fixtures/nodes.mjs): the same
  // .node file, loaded by each. Other platforms run each Node version in CI's own matrix instead.
  const others = smokeNodes()
  const nodes = others.length ? ` and under Node ${others.join(', ')}` : ''
  it(`installs into an empty project with the platform package and works from CJS and ESM${nodes}`, { timeout: 600_000 }, () => {
    const out = join(work, 'tarballs')
    execFileSync('mkdir', ['-p', out])
    npm(['pack', '--pack-destination', out], root)
    const pkgDir = join(work, 'platform')
    cpSync(join(root, 'npm', platform), pkgDir, { recursive: true })
    copyFileSync(join(root, `ferrossh.${platform}.node`), join(pkgDir, `ferrossh.${platform}.node`))
    npm(['pack', '--pack-destination', out], pkgDir)
    const tarballs = readdirSync(out).map((f) => join(out, f))
    expect(tarballs).toHaveLength(2)
    // the main tarball carries no native file: the platform package provides it
    const listing = execFileSync('tar', ['-tzf', tarballs.find((t) => /\/ferrossh-\d/.test(t))!], { encoding: 'utf8' })
    expect(listing).toContain('package/dist/cjs/index.js')
    expect(listing).not.toMatch(/\.node$/m)

    const app = join(work, 'app')
    execFileSync('mkdir', ['-p', app])
    writeFileSync(join(app, 'package.json'), '{ "name": "app", "version": "1.0.0", "private": true }\n')
    npm(['install', '--offline', '--no-package-lock', ...tarballs], app)
    const opts = JSON.stringify({ host: sshd.host, port: sshd.port, username: sshd.user, privateKeyPath: sshd.userKey.path, hostKey: { knownHosts: sshd.knownHostsFile } })
    writeFileSync(join(app, 'cjs.cjs'), `const { connect } = require('ferrossh');
(async () => { const s = await connect(${opts}); const r = await s.exec('echo cjs-ok'); process.stdout.write(r.stdout); await s.close() })()`)
    writeFileSync(join(app, 'esm.mjs'), `import { connect, SshError } from 'ferrossh'
const s = await connect(${opts}); const r = await s.exec('echo esm-ok'); process.stdout.write(r.stdout); await s.close()
if (typeof SshError !== 'function') process.exit(3)`)
    expect(execFileSync(process.execPath, ['cjs.cjs'], { cwd: app, encoding: 'utf8', timeout: 30_000 })).toBe('cjs-ok\n')
    expect(execFileSync(process.execPath, ['esm.mjs'], { cwd: app, encoding: 'utf8', timeout: 30_000 })).toBe('esm-ok\n')
    for (const version of others) {
      const node = nodeBinary(version)
      expect(execFileSync(node, ['cjs.cjs'], { cwd: app, encoding: 'utf8', timeout: 30_000 }), `Node ${version}, CJS`).toBe('cjs-ok\n')
      expect(execFileSync(node, ['esm.mjs'], { cwd: app, encoding: 'utf8', timeout: 30_000 }), `Node ${version}, ESM`).toBe('esm-ok\n')
    }
  })
})
