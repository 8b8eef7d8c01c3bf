import { describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'

describe('npm run demo', () => {
  it('runs the main job on the embedded server and exits by itself', async () => {
    const out = await new Promise<string>((res, rej) => {
      execFile(process.execPath, [resolve(__dirname, '../examples/demo.mjs')], { timeout: 90_000 }, (err, stdout, stderr) => (err ? rej(new Error(`${err.message}\n${stderr}`)) : res(stdout)))
    })
    expect(out).toMatch(/exit 0: ferrossh embedded server/)
    expect(out).toMatch(/line 5/)
    expect(out).toMatch(/round trip intact: true/)
    expect(out).toMatch(/echoed "ping through the tunnel"/)
    expect(out).toMatch(/through the jump: ferrossh embedded server/)
  }, 120_000)
})
