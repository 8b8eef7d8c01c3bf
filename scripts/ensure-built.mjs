// Builds the native binding (debug) and the TypeScript when they are missing or older
// than their sources, so `npm run demo` works right after `npm install` in a clone.
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const newest = (dir) => {
  let t = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}
const age = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0)
const nodeFile = readdirSync(root).find((f) => /^ferrossh\..*\.node$/.test(f))
const run = (args) => execFileSync('npm', ['run', ...args], { cwd: root, stdio: 'inherit' })
if (!nodeFile || age(join(root, nodeFile)) < newest(join(root, 'crates'))) run(['build:debug'])
if (age(join(root, 'dist/cjs/index.js')) < newest(join(root, 'lib'))) run(['build:ts'])
