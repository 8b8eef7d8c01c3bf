/**
 * Every error ferrossh raises is an {@link SshError} with a stable string `code`.
 * The native core sends errors as data; {@link fromNative} builds the right class.
 * @module
 */

/** Base class of every error raised by ferrossh. */
export class SshError extends Error {
  /** Stable machine-readable code, e.g. `ERR_SSH_AUTH`. */
  readonly code: string
  constructor(message: string, code: string, props: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
    for (const [k, v] of Object.entries(props)) {
      if (k !== 'message' && k !== 'code' && v !== undefined) (this as Record<string, unknown>)[k] = v
    }
  }
}

/** The TCP connection could not be made. */
export class ConnectError extends SshError {
  /** The address dialed, `host:port` (`[host]:port` for IPv6). */
  declare readonly address?: string
  /** The system error name, e.g. `ECONNREFUSED`, when there is one. */
  declare readonly errno?: string
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_CONNECT', props) }
}

/** The server's host key was not trusted. */
export class HostKeyError extends SshError {
  /** `unknown`, `changed`, `revoked` or `rejected`. */
  declare readonly reason: 'unknown' | 'changed' | 'revoked' | 'rejected'
  /** The host connected to, as given in the options. */
  declare readonly host: string
  /** The server's TCP port. */
  declare readonly port: number
  /** Type of the key the server presented, e.g. `ssh-ed25519`. */
  declare readonly algorithm: string
  /** SHA256 fingerprint of the key the server presented. */
  declare readonly fingerprint: string
  /** Fingerprints that were expected (known_hosts entries or pins). */
  declare readonly expected: string[]
  /** The known_hosts file of the line that decided (the old key when `changed`, the `@revoked` line), if any. */
  declare readonly file?: string | null
  /** That line's number in `file` (1-based), if any. */
  declare readonly line?: number | null
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_HOST_KEY', props) }
}

/** Client and server have no algorithm in common for one of the lists. */
export class NegotiationError extends SshError {
  /** `kex`, `hostKey`, `cipher`, `mac` or `compression`. */
  declare readonly list: string
  /** The algorithms ferrossh offered for that list, in order of preference. */
  declare readonly ours: string[]
  /** The algorithms the server offered for that list. */
  declare readonly theirs: string[]
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_NEGOTIATION', props) }
}

/** One authentication attempt and its outcome. */
export interface AuthAttempt {
  /** The method tried: `publickey`, `password`, `keyboard-interactive`, … (agent keys count as `publickey`). */
  method: string
  /** What happened, e.g. `accepted`, `rejected`, `partial success`, `agent has no keys`. */
  outcome: string
  /** Which key or identity, when there is one (a fingerprint or file name, never a secret). */
  detail?: string | null
}

/** Authentication failed; lists every attempt and what the server still allows. */
export class AuthError extends SshError {
  /** Every authentication attempt, in the order made. */
  declare readonly attempts: AuthAttempt[]
  /** Methods the server said can continue. */
  declare readonly allowed: string[]
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_AUTH', props) }
}

/** An operation took longer than its timeout. */
export class TimeoutError extends SshError {
  /** `connect`, `handshake`, `auth`, `exec`, `keepalive` or `idle`. */
  declare readonly phase: string
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_TIMEOUT', props) }
}

/** The operation was aborted through its AbortSignal (same name and code as Node's own). */
export class AbortError extends SshError {
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, 'ABORT_ERR', {}, options)
    this.name = 'AbortError'
  }
}

/** A channel could not be opened or a channel request was refused. */
export class ChannelError extends SshError {
  /** e.g. `administratively-prohibited`, `connect-failed`, `request-failed`, `closed`. */
  declare readonly reason: string
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_CHANNEL', props) }
}

/** A command failed (with `check: true`) or exceeded `maxBuffer`. */
export class CommandError extends SshError {
  /** The command's exit status; null when a signal ended it or no status was received. */
  declare readonly exitCode: number | null
  /** Name of the signal that ended the command, without `SIG` (`'TERM'`), or null. */
  declare readonly signal: string | null
  /** The command's stdout (cut at `maxBuffer` when that was exceeded). */
  declare readonly stdout: Buffer
  /** The command's stderr (cut at `maxBuffer` when that was exceeded). */
  declare readonly stderr: Buffer
  /** `exit` (non-zero status or signal) or `maxBuffer`. */
  declare readonly reason: 'exit' | 'maxBuffer'
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_COMMAND', props) }
}

/** An SFTP request failed; `code` is fs-style (ENOENT, EACCES, …). */
export class SftpError extends SshError {
  /** The SFTP status code the server returned (`SSH_FX_*`). */
  declare readonly status: number
  /** The remote path of the failed request, when it has one. */
  declare readonly path?: string
  /**
   * For a call cut short because its connection ended (`ECONNRESET`), the connection's
   * {@link DisconnectError} reason: `'closed'` after your own `close()`, else `'connection-lost'`.
   */
  declare readonly reason?: 'closed' | 'connection-lost'
  constructor(message: string, code: string, props: Record<string, unknown> = {}) { super(message, code, props) }
}

/** A port forward could not be set up. */
export class ForwardError extends SshError {
  /** The forward that failed, as it was specified. */
  declare readonly spec: string
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_FORWARD', props) }
}

/** A jump host, proxy command or proxy failed. */
export class ProxyError extends SshError {
  /** Position of the failing jump host in the chain, when a jump host failed. */
  declare readonly hop?: number
  /** The jump host or proxy that failed. */
  declare readonly host?: string
  /**
   * The proxy command that failed (as in ssh's `ProxyCommand`). It may carry secrets (a token
   * in an argument), so it is kept out of the message and of `util.inspect` (not enumerable).
   */
  declare readonly command?: string
  /** What the proxy command wrote to stderr. */
  declare readonly stderr?: string
  constructor(message: string, props: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    const { command, ...rest } = props
    super(message, 'ERR_SSH_PROXY', rest, options)
    if (command !== undefined) Object.defineProperty(this, 'command', { value: command, enumerable: false })
  }
}

/** The connection ended (cut, closed by the server, MAC failure, keepalive timeout). */
export class DisconnectError extends SshError {
  /** The server's SSH disconnect reason code (e.g. `ByApplication`), or `connection-lost`. */
  declare readonly reason: string
  /** The server's disconnect message, or what ended the connection. */
  declare readonly description: string
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_DISCONNECTED', props) }
}

/** An option or a file was invalid; `option`, `file` and `line` say where. */
export class ConfigError extends SshError {
  /** The option at fault, e.g. `privateKeyPath` or `hostKey.knownHosts`. */
  declare readonly option?: string | null
  /** The file at fault, when a file was involved. */
  declare readonly file?: string | null
  /** The line in `file` (1-based), when known. */
  declare readonly line?: number | null
  constructor(message: string, props: Record<string, unknown> = {}) { super(message, 'ERR_SSH_CONFIG', props) }
}

const MARKER = '\u0001ferrossh:'

type Ctor = new (message: string, props: Record<string, unknown>) => SshError

const BY_CODE: Record<string, Ctor> = {
  ERR_SSH_CONNECT: ConnectError,
  ERR_SSH_HOST_KEY: HostKeyError,
  ERR_SSH_NEGOTIATION: NegotiationError,
  ERR_SSH_AUTH: AuthError,
  ERR_SSH_TIMEOUT: TimeoutError,
  ERR_SSH_CHANNEL: ChannelError,
  ERR_SSH_COMMAND: CommandError,
  ERR_SSH_FORWARD: ForwardError,
  ERR_SSH_PROXY: ProxyError,
  ERR_SSH_DISCONNECTED: DisconnectError,
  ERR_SSH_CONFIG: ConfigError,
}

/** Builds the typed error for a serialized core error (or passes other errors through). @internal */
export function fromNative(e: unknown): Error {
  const text = typeof e === 'string' ? e : e instanceof Error ? e.message : undefined
  if (text === undefined || !text.startsWith(MARKER)) {
    if (e instanceof Error) return e
    return new SshError(String(e), 'ERR_SSH_INTERNAL')
  }
  let data: Record<string, unknown>
  try {
    data = JSON.parse(text.slice(MARKER.length)) as Record<string, unknown>
  } catch {
    return new SshError(text.slice(MARKER.length), 'ERR_SSH_INTERNAL')
  }
  const code = String(data.code)
  const message = String(data.message)
  if (code === 'ABORT_ERR') return new AbortError(message)
  if (data.sftp === true) {
    const props = { ...data }
    delete props.code
    delete props.message
    delete props.sftp
    return new SftpError(message, code, props)
  }
  const C = BY_CODE[code]
  const props = { ...data }
  delete props.code
  delete props.message
  const cause = props.cause && typeof props.cause === 'object' ? fromNative(MARKER + JSON.stringify(props.cause)) : undefined
  delete props.cause
  const err = C ? new C(message, props) : new SshError(message, code, props)
  if (cause) Object.defineProperty(err, 'cause', { value: cause, enumerable: false, writable: true, configurable: true })
  return err
}

/** Runs `fn`, converting a rejected native promise into the typed error. @internal */
export async function native<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (e) {
    throw fromNative(e)
  }
}

/**
 * Emits an event from inside a promise chain. A listener that throws then surfaces as an
 * uncaught exception, as it would from a socket's event, instead of as a rejection of the
 * chain (an unhandled one, or a failure of whatever awaited it).
 * @internal
 */
export function emitFromPromise(emitter: { emit(event: string, ...args: unknown[]): boolean }, event: string, ...args: unknown[]): void {
  try {
    emitter.emit(event, ...args)
  } catch (e) {
    process.nextTick(() => {
      throw e
    })
  }
}
