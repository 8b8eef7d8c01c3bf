import { homedir } from 'node:os'

import { ConfigError } from './errors'
import type { NativeServerOptions } from './native'
import type { AlgorithmOptions } from './options'
import type { ServerContext, ServerSession } from './server-session'

/** The context of an authentication attempt. */
export interface AuthContext extends ServerContext {
  /** The method being tried. */
  method: 'password' | 'publickey' | 'keyboard-interactive'
}

/** A public key a client offered. Compare `fingerprint` or `publicKey` with what you trust. */
export interface OfferedKey {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … */
  algorithm: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  fingerprint: string
  /** `type base64`, as in an authorized_keys line (without the comment). */
  publicKey: string
}

/** One question of a keyboard-interactive round. */
export interface ServerPrompt {
  /** The text shown to the user, e.g. `'Verification code: '`. */
  prompt: string
  /** Whether the client may echo what the user types (default false). */
  echo?: boolean
}

/**
 * Asks the client one round of questions; resolves with the answers in order. Rejects with
 * an AuthError when the client gives up or goes away.
 */
export type ServerPrompter = (prompts: (ServerPrompt | string)[], info?: {
  /** A title for the round. */
  name?: string
  /** Instructions shown before the prompts. */
  instructions?: string
}) => Promise<string[]>

/** A callback's verdict: only `true` (or a promise of it) accepts; anything else, a throw included, refuses. */
export type Verdict = boolean | Promise<boolean>

/** How clients may authenticate. Each given callback enables its method. */
export interface ServerAuthOptions {
  /** Checks a password. */
  password?: (ctx: AuthContext, password: string) => Verdict
  /** Checks a public key (the client's signature with it is verified before it counts). */
  publicKey?: (ctx: AuthContext, key: OfferedKey) => Verdict
  /**
   * keyboard-interactive (RFC 4256): ask as many rounds as you like with `prompt`.
   * @example
   * keyboardInteractive: async (ctx, prompt) => {
   *   const [pw] = await prompt([{ prompt: 'Password: ' }])
   *   const [code] = await prompt([{ prompt: 'Code: ', echo: true }])
   *   return pw === 'secret' && code === '123456'
   * }
   */
  keyboardInteractive?: (ctx: AuthContext, prompt: ServerPrompter) => Verdict
  /** Lets every client in without authentication (demos and tests only). */
  none?: boolean
}

/** Where a client wants a direct-tcpip connection to go (`ssh -L`, `-D`, `-W`). */
export interface DirectTarget {
  /** The host the server is asked to connect to. */
  host: string
  /** The port the server is asked to connect to. */
  port: number
  /** The address the client says the connection came from. */
  originatorAddress: string
  /** The port the client says the connection came from. */
  originatorPort: number
}

/** Where a client wants the server to listen (`ssh -R`). */
export interface RemoteBind {
  /** Bind address as the client sent it (`''` = all addresses, `localhost` = loopback). */
  address: string
  /** Port to listen on (0 = any free port). */
  port: number
}

/** Forwarding authorisation: nothing is forwarded unless a hook allows it. */
export interface ServerForwardingOptions {
  /** Allow (true), refuse, or decide each direct-tcpip connection. */
  direct?: boolean | ((ctx: ServerContext, target: DirectTarget) => Verdict)
  /** Allow (true), refuse, or decide each tcpip-forward listener. */
  remote?: boolean | ((ctx: ServerContext, bind: RemoteBind) => Verdict)
}

/** Limits that keep hostile or careless clients from exhausting the server. */
export interface ServerLimitOptions {
  /** Failed authentication attempts before the connection is dropped (default 6, as OpenSSH). */
  maxAuthTries?: number
  /** Milliseconds a connection has to authenticate before it is dropped (default 120000). */
  authTimeout?: number
  /** Connections at once, authenticated or not (default 1000). */
  maxConnections?: number
  /**
   * Unauthenticated connections that may sit silent (default 64, like OpenSSH's MaxStartups).
   * Past it, those silent for a second are dropped, longest silent first: a burst is let in
   * (honest clients in it finish in milliseconds) and what stalls in it is gone a moment later.
   * At `maxConnections`, a silent unauthenticated connection is dropped for a newcomer.
   */
  maxStartups?: number
  /** Channels open at once per connection (default 64). */
  maxChannels?: number
  /** Send a keepalive after this many idle milliseconds (default: off). */
  keepaliveInterval?: number
  /** Milliseconds a callback (authentication ones included, within `authTimeout`) may take before it counts as a refusal (default 30000). */
  callbackTimeout?: number
}

/**
 * A session handler. Throwing (synchronously) or returning `false` refuses the request. A
 * returned promise ends the session when it settles: its number (default 0) becomes the exit
 * status, a rejection exits with 1. Returning nothing leaves the session open until
 * {@link ServerSession.exit} or {@link ServerSession.kill}.
 */
export type SessionHandler = (session: ServerSession) => unknown

/** Options of {@link createServer}. */
export interface ServerOptions {
  /**
   * Host keys: private key texts (OpenSSH, PEM, PPK) or paths to them. Default: an
   * ephemeral ed25519 key, new on every start (clients will see a new host key).
   */
  hostKeys?: string | Buffer | (string | Buffer)[]
  /** Passphrase of encrypted host keys. */
  hostKeyPassphrase?: string
  /** Loads the host key from this file, or generates an ed25519 key and saves it there first. */
  hostKeyPath?: string
  /** Text clients show before authentication (the `Banner` of sshd_config). */
  banner?: string
  /** How clients authenticate. */
  auth: ServerAuthOptions
  /** Runs commands (`ssh host cmd`). */
  exec?: SessionHandler
  /** Serves interactive shells (`ssh host`); `session.pty` has the terminal, `'resize'` events its changes. */
  shell?: SessionHandler
  /** Subsystems by name (`ssh -s host name`); a handler named `sftp` replaces the built-in one. */
  subsystem?: Record<string, SessionHandler>
  /** The built-in SFTP server (also what `scp` uses), confined to `root`. */
  sftp?: {
    /** The directory clients see as `/`; nothing outside it can be read, listed or changed. */
    root: string
    /** Refuse every change (uploads, removes, renames, …). */
    readOnly?: boolean
  }
  /** Forwarding authorisation (refused unless allowed here). */
  forwarding?: ServerForwardingOptions
  /** Environment variable names (`*` and `?` globs) sessions receive, as sshd's AcceptEnv (default: all). */
  acceptEnv?: string[]
  /** Connection limits. */
  limits?: ServerLimitOptions
  /** Algorithm preferences (OpenSSH-style lists or `+`/`-`/`^` edits of the defaults). */
  algorithms?: AlgorithmOptions
  /** Bytes of client input buffered per session before the connection waits for a reader (default 4 MiB). */
  highWaterMark?: number
}

/** @internal */
export function bad(option: string, message: string): never {
  throw new ConfigError(`${option}: ${message}`, { option })
}

function fn(o: Record<string, unknown>, key: string, prefix = ''): ((...a: never[]) => unknown) | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'function') bad(prefix + key, `must be a function, got ${typeof v}`)
  return v as (...a: never[]) => unknown
}

function limit(o: Record<string, unknown>, key: string, max: number): number | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) bad(`limits.${key}`, `must be an integer between 1 and ${max}`)
  return v
}

function list(key: string, v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean)
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[]
  bad(key, 'must be a comma-separated string or an array of names')
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p
}

const KEY_TEXT = /-----BEGIN |PuTTY-User-Key-File-/

function hostKeyOptions(o: Record<string, unknown>, out: NativeServerOptions): void {
  const v = o.hostKeys
  if (v !== undefined && v !== null) {
    const items = Array.isArray(v) ? v : [v]
    const keys: Buffer[] = []
    const files: string[] = []
    for (const [i, k] of items.entries()) {
      if (Buffer.isBuffer(k)) keys.push(k)
      else if (typeof k === 'string' && KEY_TEXT.test(k)) keys.push(Buffer.from(k))
      else if (typeof k === 'string' && k) files.push(expandHome(k))
      else bad(`hostKeys[${i}]`, 'must be a private key (string or Buffer) or a path to one')
    }
    out.hostKeys = keys
    out.hostKeyFiles = files
  }
  if (o.hostKeyPassphrase !== undefined) {
    if (typeof o.hostKeyPassphrase !== 'string') bad('hostKeyPassphrase', 'must be a string')
    out.hostKeyPassphrase = o.hostKeyPassphrase
  }
  if (o.hostKeyPath !== undefined) {
    if (typeof o.hostKeyPath !== 'string' || !o.hostKeyPath) bad('hostKeyPath', 'must be a path')
    out.hostKeyPath = expandHome(o.hostKeyPath)
  }
}

const KNOWN = new Set(['hostKeys', 'hostKeyPassphrase', 'hostKeyPath', 'banner', 'auth', 'exec', 'shell', 'subsystem', 'sftp', 'forwarding', 'acceptEnv', 'limits', 'algorithms', 'highWaterMark'])

/** The user's callbacks, checked. @internal */
export interface Handlers {
  auth: ServerAuthOptions
  exec?: SessionHandler
  shell?: SessionHandler
  subsystem: Record<string, SessionHandler>
  direct?: boolean | ((ctx: ServerContext, t: DirectTarget) => Verdict)
  remote?: boolean | ((ctx: ServerContext, b: RemoteBind) => Verdict)
}

/** Checks the options object of createServer and converts it for the binding. @internal */
export function resolveServerOptions(input: unknown): { native: NativeServerOptions; handlers: Handlers } {
  if (input === null || typeof input !== 'object') throw new ConfigError('createServer: needs an options object', { option: 'options' })
  const o = input as Record<string, unknown>
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) bad(k, 'unknown server option')
  const auth = o.auth as Record<string, unknown> | undefined
  if (auth === null || typeof auth !== 'object') bad('auth', 'is required: { password, publicKey, keyboardInteractive, none }')
  for (const k of Object.keys(auth)) if (!['password', 'publicKey', 'keyboardInteractive', 'none'].includes(k)) bad(`auth.${k}`, 'unknown authentication method')
  const password = fn(auth, 'password', 'auth.')
  const publicKey = fn(auth, 'publicKey', 'auth.')
  const keyboardInteractive = fn(auth, 'keyboardInteractive', 'auth.')
  if (auth.none !== undefined && typeof auth.none !== 'boolean') bad('auth.none', 'must be a boolean')
  const none = auth.none === true
  if (!password && !publicKey && !keyboardInteractive && !none) bad('auth', 'give at least one of password, publicKey, keyboardInteractive (or none: true)')
  const exec = fn(o, 'exec') as SessionHandler | undefined
  const shell = fn(o, 'shell') as SessionHandler | undefined
  const subsystem: Record<string, SessionHandler> = {}
  if (o.subsystem !== undefined && o.subsystem !== null) {
    if (typeof o.subsystem !== 'object') bad('subsystem', 'must be an object { name: handler }')
    for (const [name, h] of Object.entries(o.subsystem as Record<string, unknown>)) {
      if (typeof h !== 'function') bad(`subsystem.${name}`, 'must be a function')
      if (!name || name.length > 256) bad('subsystem', `invalid subsystem name ${JSON.stringify(name)}`)
      subsystem[name] = h as SessionHandler
    }
  }
  const native: NativeServerOptions = {
    password: !!password, publicKey: !!publicKey, keyboardInteractive: !!keyboardInteractive, none,
    exec: !!exec, shell: !!shell, subsystems: Object.keys(subsystem), forwardDirect: false, forwardRemote: false,
  }
  hostKeyOptions(o, native)
  if (o.banner !== undefined) {
    if (typeof o.banner !== 'string') bad('banner', 'must be a string')
    native.banner = o.banner
  }
  if (o.sftp !== undefined && o.sftp !== null) {
    const s = o.sftp as Record<string, unknown>
    if (typeof s !== 'object' || typeof s.root !== 'string' || !s.root) bad('sftp.root', 'is required: the directory clients see as /')
    if (s.readOnly !== undefined && typeof s.readOnly !== 'boolean') bad('sftp.readOnly', 'must be a boolean')
    native.sftpRoot = expandHome(s.root as string)
    native.sftpReadOnly = s.readOnly === true
  }
  let direct: Handlers['direct']
  let remote: Handlers['remote']
  if (o.forwarding !== undefined && o.forwarding !== null) {
    const f = o.forwarding as Record<string, unknown>
    if (typeof f !== 'object') bad('forwarding', 'must be an object { direct, remote }')
    for (const k of Object.keys(f)) if (k !== 'direct' && k !== 'remote') bad(`forwarding.${k}`, 'unknown forwarding kind (use direct or remote)')
    for (const k of ['direct', 'remote'] as const) {
      const v = f[k]
      if (v !== undefined && typeof v !== 'boolean' && typeof v !== 'function') bad(`forwarding.${k}`, 'must be a boolean or a function')
    }
    direct = f.direct as Handlers['direct']
    remote = f.remote as Handlers['remote']
    native.forwardDirect = direct !== undefined && direct !== false
    native.forwardRemote = remote !== undefined && remote !== false
  }
  native.acceptEnv = list('acceptEnv', o.acceptEnv)
  if (o.limits !== undefined && o.limits !== null) {
    const l = o.limits as Record<string, unknown>
    if (typeof l !== 'object') bad('limits', 'must be an object')
    const keys = ['maxAuthTries', 'authTimeout', 'maxConnections', 'maxStartups', 'maxChannels', 'keepaliveInterval', 'callbackTimeout']
    for (const k of Object.keys(l)) if (!keys.includes(k)) bad(`limits.${k}`, 'unknown limit')
    native.maxAuthTries = limit(l, 'maxAuthTries', 100)
    native.authTimeoutMs = limit(l, 'authTimeout', 3_600_000)
    native.maxConnections = limit(l, 'maxConnections', 1_000_000)
    native.maxStartups = limit(l, 'maxStartups', 1_000_000)
    native.maxChannels = limit(l, 'maxChannels', 10_000)
    native.keepaliveIntervalMs = limit(l, 'keepaliveInterval', 86_400_000)
    native.callbackTimeoutMs = limit(l, 'callbackTimeout', 3_600_000)
  }
  if (o.algorithms !== undefined && o.algorithms !== null) {
    const a = o.algorithms as Record<string, unknown>
    if (typeof a !== 'object') bad('algorithms', 'must be an object { kex, cipher, mac, hostKey, compression }')
    for (const k of Object.keys(a)) if (!['kex', 'cipher', 'mac', 'hostKey', 'compression'].includes(k)) bad(`algorithms.${k}`, 'unknown algorithm list')
    native.algorithms = {
      kex: list('algorithms.kex', a.kex), cipher: list('algorithms.cipher', a.cipher), mac: list('algorithms.mac', a.mac),
      hostKey: list('algorithms.hostKey', a.hostKey), compression: list('algorithms.compression', a.compression),
    }
  }
  if (o.highWaterMark !== undefined) {
    if (typeof o.highWaterMark !== 'number') bad('highWaterMark', 'must be a number of bytes')
    native.highWaterMark = o.highWaterMark
  }
  return { native, handlers: { auth: { password, publicKey, keyboardInteractive, none } as ServerAuthOptions, exec, shell, subsystem, direct, remote } }
}
