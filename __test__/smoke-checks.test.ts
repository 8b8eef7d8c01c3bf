import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'

// scripts/smoke-checks.mjs is what the GitHub workflow's electron job runs inside Electron; here
// the same checks run under Node, so they keep working between workflow runs.
describe('the Electron smoke checks, under Node', () => {
  it('all pass against the embedded server', async () => {
    const script = `import(${JSON.stringify(resolve(__dirname, '../scripts/smoke-checks.mjs'))}).then((m) => m.run())`
    const out = await new Promise<string>((res, rej) => {
      execFile(process.execPath, ['-e', script], { timeout: 90_000 }, (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stdout}\n${stderr}`)) : res(stdout)))
    })
    const lines = out.split('\n')
    expect(lines.filter((l) => l.startsWith('ok: '))).toHaveLength(4)
    expect(out).not.toMatch(/FAILED/)
  }, 120_000)
})
