// The generated napi-rs loader sits at the package root (index.js); dist/cjs/*.js is two
// levels below it. Users never import it directly.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('../../index.js') as typeof import('../index')

// The native runtime reads FERROSSH_WORKER_THREADS when it loads and keeps one thread for
// anything it cannot use; say so instead of ignoring a setting silently.
const workers = process.env.FERROSSH_WORKER_THREADS
if (workers !== undefined && !/^(?:[1-9]|1[0-6])$/.test(workers)) {
  process.emitWarning(`FERROSSH_WORKER_THREADS must be a whole number from 1 to 16 (got ${JSON.stringify(workers.slice(0, 40))}); using one runtime thread`, { code: 'FERROSSH_WORKER_THREADS' })
}

export default binding
export type {
  NativeClient,
  NativeChannel,
  NativeConnectOptions,
  NativeAuthMethod,
  NativeHostKeyInfo,
  NativeKbdRequest,
  NativeExitInfo,
  NativeExecOutput,
  NativeNegotiated,
  NativePty,
  NativeServer,
  NativeServerChannel,
  NativeServerOptions,
  NativeAuthRequest,
  NativeSessionStart,
  NativeForwardRequest,
  NativeKbdPrompter,
  NativeChannelEvent,
} from '../index'
