// The library in Electron's main process, for the GitHub workflow's `electron` job: Electron
// runs its own Node build, and its V8 refuses external buffers (every Buffer the native side
// hands over must be a copy). Runs the checks of scripts/smoke-checks.mjs and exits 0 only if
// all of them hold.
//
//   npm run build:ts   (and the native binary in the repository root)
//   xvfb-run -a npx electron --no-sandbox scripts/electron-smoke.mjs
import { app } from 'electron'

import { run } from './smoke-checks.mjs'

app.whenReady().then(run).then(
  () => app.exit(0),
  (err) => {
    console.error(err)
    app.exit(1)
  },
)
