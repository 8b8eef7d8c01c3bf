// The generated napi-rs loader sits at the package root (index.js); dist/cjs/*.js is two
// levels below it. Users never import it directly.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const binding = require('../../index.js') as typeof import('../index')

export default binding
export type {
  NativeClient,
  NativeChannel,
  NativeConnectOptions,
  NativeAuthMethod,
  NativeHostKeyInfo,
  NativeKbdRequest,
  NativeExitInfo,
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
