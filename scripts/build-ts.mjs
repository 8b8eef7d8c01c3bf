// Compiles lib/ to CommonJS (dist/cjs) and writes a thin ESM entry (dist/esm) that
// re-exports it, so `import` and `require` share one instance of the library.
import { execFileSync } from 'node:child_process'
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
// compile next to the old output and swap only on success: a failed build leaves dist/ usable
const next = join(root, 'dist.next')
rmSync(next, { recursive: true, force: true })
execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', join(next, 'cjs')], { stdio: 'inherit' })
rmSync(join(root, 'dist'), { recursive: true, force: true })
renameSync(next, join(root, 'dist'))
writeFileSync(join(root, 'dist/cjs/package.json'), '{ "type": "commonjs" }\n')
const names = Object.keys(createRequire(import.meta.url)(join(root, 'dist/cjs/index.js'))).filter((n) => n !== 'default' && n !== '__esModule')
mkdirSync(join(root, 'dist/esm'), { recursive: true })
writeFileSync(
  join(root, 'dist/esm/index.mjs'),
  `import cjs from '../cjs/index.js'\n${names.map((n) => `export const ${n} = cjs.${n}`).join('\n')}\nexport default cjs\n`,
)
writeFileSync(join(root, 'dist/esm/index.d.mts'), "export * from '../cjs/index.js'\n")
