import { describe, expect, it } from 'vitest'
import { inspect } from 'node:util'

import { createRequire } from 'node:module'

// one CommonJS instance for both, as users get it (an ESM import of a CJS file is a second copy under vitest)
const require = createRequire(import.meta.url)
const ferrossh = require('../../dist/cjs/index.js') as typeof import('../../dist/cjs/index.js')
const { fromNative } = require('../../dist/cjs/errors.js') as typeof import('../../dist/cjs/errors.js')

const M = '\u0001ferrossh:'

describe('error mapping', () => {
  const table: [string, string, unknown][] = [
    ['ERR_SSH_CONNECT', 'ConnectError', ferrossh.ConnectError],
    ['ERR_SSH_HOST_KEY', 'HostKeyError', ferrossh.HostKeyError],
    ['ERR_SSH_NEGOTIATION', 'NegotiationError', ferrossh.NegotiationError],
    ['ERR_SSH_AUTH', 'AuthError', ferrossh.AuthError],
    ['ERR_SSH_TIMEOUT', 'TimeoutError', ferrossh.TimeoutError],
    ['ERR_SSH_CHANNEL', 'ChannelError', ferrossh.ChannelError],
    ['ERR_SSH_COMMAND', 'CommandError', ferrossh.CommandError],
    ['ERR_SSH_FORWARD', 'ForwardError', ferrossh.ForwardError],
    ['ERR_SSH_PROXY', 'ProxyError', ferrossh.ProxyError],
    ['ERR_SSH_DISCONNECTED', 'DisconnectError', ferrossh.DisconnectError],
    ['ERR_SSH_CONFIG', 'ConfigError', ferrossh.ConfigError],
  ]
  it.each(table)('%s becomes %s with its fields', (code, name, cls) => {
    const e = fromNative(new Error(`${M}${JSON.stringify({ code, message: 'boom', reason: 'x', file: '/f', line: 3 })}`))
    expect(e).toBeInstanceOf(cls as never)
    expect(e).toBeInstanceOf(ferrossh.SshError)
    expect(e.name).toBe(name)
    expect((e as ferrossh.SshError).code).toBe(code)
    expect(e.message).toBe('boom')
    expect((e as unknown as { line: number }).line).toBe(3)
  })

  it('abort errors look like Node\'s', () => {
    const e = fromNative(`${M}{"code":"ABORT_ERR","message":"The operation was aborted"}`)
    expect(e.name).toBe('AbortError')
    expect((e as ferrossh.SshError).code).toBe('ABORT_ERR')
  })

  it('passes foreign errors through and survives garbage', () => {
    const plain = new TypeError('x')
    expect(fromNative(plain)).toBe(plain)
    const g = fromNative(`${M}{not json`)
    expect(g).toBeInstanceOf(ferrossh.SshError)
    expect(inspect(g)).toContain('not json')
  })
})
