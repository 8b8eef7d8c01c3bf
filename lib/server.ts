import { EventEmitter } from 'node:events'

import { AuthError, ConfigError, emitFromPromise, fromNative, native } from './errors'
import binding, { type NativeAuthRequest, type NativeForwardRequest, type NativeKbdPrompter, type NativeServer, type NativeServerChannel, type NativeSessionStart } from './native'
import { type AuthContext, bad, type Handlers, resolveServerOptions, type ServerAuthOptions, type ServerOptions, type ServerPrompter } from './server-options'
import { contextOf, ServerSession } from './server-session'

/** A host key the server presents. */
export interface ServerHostKey {
  /** e.g. `ssh-ed25519` */
  algorithm: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it (what clients pin). */
  fingerprint: string
  /** `type base64`, for a known_hosts line. */
  publicKey: string
}

/** The address a server listens on. */
export interface ServerAddress {
  /** The IP address bound. */
  address: string
  /** The port bound (the one picked when 0 was asked for). */
  port: number
  /** `IPv4` or `IPv6`. */
  family: string
}

const noop = (): void => {}

/** Calls a user callback; only a literal `true` (or a promise of it) is a yes. */
async function ask(f: () => unknown): Promise<boolean> {
  try {
    return (await f()) === true
  } catch {
    return false
  }
}

function prompterFor(p: NativeKbdPrompter): ServerPrompter {
  return async (prompts, info = {}) => {
    if (!Array.isArray(prompts)) throw new ConfigError('prompt: needs an array of prompts', { option: 'prompts' })
    const list = prompts.map((q) => (typeof q === 'string' ? { prompt: q, echo: false } : { prompt: String(q.prompt), echo: q.echo === true }))
    const answers = await p.prompt(info.name ?? '', info.instructions ?? '', list)
    if (!answers) throw new AuthError('the client gave no answers', { attempts: [], allowed: [] })
    return answers
  }
}

function authHandler(auth: ServerAuthOptions) {
  return async (req: NativeAuthRequest, prompter: NativeKbdPrompter | null): Promise<boolean> => {
    const ctx: AuthContext = { ...contextOf(req.user, req.connection), method: req.method as AuthContext['method'] }
    switch (req.method) {
      case 'password':
        return ask(() => auth.password?.(ctx, req.password ?? ''))
      case 'publickey':
        return req.key ? ask(() => auth.publicKey?.(ctx, { ...req.key! })) : false
      case 'keyboard-interactive':
        return prompter ? ask(() => auth.keyboardInteractive?.(ctx, prompterFor(prompter))) : false
      default:
        return false
    }
  }
}

/** Starts a session handler: a synchronous throw (or `false`) refuses the request; the settling of a returned promise ends the session. */
function sessionHandler(h: Handlers) {
  return async (req: NativeSessionStart, chan: NativeServerChannel): Promise<boolean> => {
    const handler = req.kind === 'exec' ? h.exec : req.kind === 'shell' ? h.shell : h.subsystem[req.subsystem ?? '']
    if (!handler) return false
    const session = new ServerSession(req, chan)
    let r: unknown
    try {
      r = handler(session)
    } catch {
      return false
    }
    if (r === false) return false
    // a number returned at once is the exit status as a promise's would be (the session
    // would otherwise stay open with nobody to end it)
    if (typeof r === 'number') r = Promise.resolve(r)
    if (r && typeof (r as PromiseLike<unknown>).then === 'function') {
      Promise.resolve(r).then(
        // an exit status is a uint32: anything else ends the session with 0, as a non-number does
        (v) => session.exit(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : 0),
        () => session.exit(1),
      ).catch(noop)
    }
    return true
  }
}

function forwardHandler(h: Handlers) {
  return async (req: NativeForwardRequest): Promise<boolean> => {
    const ctx = contextOf(req.user, req.connection)
    if (req.kind === 'direct') {
      const d = h.direct
      if (d === true) return true
      if (typeof d !== 'function') return false
      return ask(() => d(ctx, { host: req.host ?? '', port: req.port, originatorAddress: req.originatorAddress ?? '', originatorPort: req.originatorPort ?? 0 }))
    }
    const r = h.remote
    if (r === true) return true
    if (typeof r !== 'function') return false
    return ask(() => r(ctx, { address: req.address ?? '', port: req.port }))
  }
}

/**
 * An embedded SSH server. Create it with {@link createServer}, then {@link SshServer.listen}.
 * While listening it keeps the process alive, like a `net.Server` (see {@link SshServer.unref}).
 * Emits `'close'` once {@link SshServer.close} has finished.
 */
export class SshServer extends EventEmitter {
  readonly #native: NativeServer
  #listening = false
  #refed = true
  #closing: Promise<void> | undefined

  /** @internal */
  constructor(options: ServerOptions) {
    super()
    const { native: opts, handlers } = resolveServerOptions(options)
    try {
      this.#native = new binding.NativeServer(opts, authHandler(handlers.auth), sessionHandler(handlers), forwardHandler(handlers), noop, () => this.#syncRef())
    } catch (e) {
      throw fromNative(e)
    }
  }

  /**
   * Starts listening (port 0 picks a free one; the host defaults to `127.0.0.1`, so a server
   * is reachable from elsewhere only when you say so).
   * @example
   * const server = await createServer({ auth: { password: (ctx, pw) => pw === 'secret' }, exec }).listen(2222)
   * console.log(server.address()?.port)
   */
  async listen(port = 0, host = '127.0.0.1'): Promise<this> {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) bad('port', 'must be an integer between 0 and 65535')
    if (typeof host !== 'string' || !host) bad('host', 'must be a non-empty string')
    if (this.#closing) throw new ConfigError('listen: the server was closed; create a new one', { option: 'listen' })
    await native(() => this.#native.listen(host, port))
    this.#listening = true
    this.#syncRef()
    return this
  }

  /**
   * Holds the process while the server listens (unless unref()'d) and, as a `net.Server`'s
   * sockets do, while any connection is open whatever ref() says.
   */
  #syncRef(): void {
    const listening = this.#listening && this.#refed && !this.#closing
    this.#native.setRef(listening || this.#native.liveConnections > 0)
  }

  /** The address listened on, or null before {@link SshServer.listen} and once closing. */
  address(): ServerAddress | null {
    if (this.#closing) return null
    return this.#native.address ?? null
  }

  /** Connections open now (authenticated or not). */
  get connections(): number {
    return this.#native.connections
  }

  /** The host keys the server presents (give a fingerprint to clients to pin). */
  get hostKeys(): ServerHostKey[] {
    return this.#native.hostKeys.map((k) => ({ algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.publicKey }))
  }

  /**
   * Stops accepting and shuts down gracefully: connections still authenticating are dropped
   * at once, sessions may finish until `timeout` milliseconds (default 10000), then every
   * remaining connection is closed. Resolves once all are gone; every callback is released.
   */
  close(options: {
    /** Milliseconds sessions may take to finish (default 10000; 0 closes them at once). */
    timeout?: number
  } = {}): Promise<void> {
    if (this.#closing) return this.#closing
    const timeout = options?.timeout ?? 10_000
    // a promise-returning call rejects rather than throws, and a bad timeout leaves the server as it was
    if (typeof timeout !== 'number' || !(timeout >= 0)) return Promise.reject(new ConfigError('timeout: must be a number of milliseconds', { option: 'timeout' }))
    this.#closing = native(() => this.#native.close(timeout)).then(() => {
      this.#listening = false
      emitFromPromise(this, 'close')
    })
    this.#syncRef()
    return this.#closing
  }

  /** Lets the process exit while the server listens (like `net.Server.unref()`: open connections still hold it until they end). */
  unref(): this {
    this.#refed = false
    this.#syncRef()
    return this
  }

  /** Keeps the process alive while the server listens (the default). */
  ref(): this {
    this.#refed = true
    this.#syncRef()
    return this
  }

  /** Closes the server, so `await using server = …` shuts it down at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Creates an embedded SSH server (not yet listening). Invalid options throw a ConfigError.
 * @example
 * const server = await createServer({
 *   hostKeyPath: './host_ed25519',
 *   auth: { publicKey: (ctx, key) => key.fingerprint === trusted },
 *   exec: async (s) => { s.stdout.write(`hello ${s.user}\n`) },
 *   sftp: { root: '/srv/files' },
 * }).listen(2222, '0.0.0.0')
 */
export function createServer(options: ServerOptions): SshServer {
  return new SshServer(options)
}
