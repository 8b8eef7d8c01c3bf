import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'

import { AbortError, CommandError, ConfigError, fromNative, native } from './errors'
import { RemoteProcess, type ExecOptions, type ExecResult, type SpawnOptions, toExitStatus } from './exec'
import binding, { type NativeChannel, type NativeClient } from './native'
import { type ConnectOptions, type HostKeyInfo, envToNative, ptyToNative, resolveOptions, type PtyOptions, type X11Options, x11ToNative } from './options'
import { ChannelDuplex } from './stream'
import type { SshClientBuilder } from './builder'

/** Algorithms negotiated for a connection (client→server; `*ServerToClient` where they differ). */
export interface NegotiatedAlgorithms {
  /** Key exchange algorithm, e.g. `curve25519-sha256`. */
  kex: string
  /** Host key algorithm the server signed with, e.g. `ssh-ed25519`. */
  hostKey: string
  /** Cipher, e.g. `chacha20-poly1305@openssh.com`. */
  cipher: string
  /** MAC client→server (an AEAD cipher such as chacha20-poly1305 needs none). */
  mac: string
  /** MAC server→client. */
  macServerToClient: string
  /** Compression client→server, e.g. `none`. */
  compression: string
  /** Compression server→client. */
  compressionServerToClient: string
}

/** Options of {@link SshClient.shell}. */
export interface ShellOptions {
  /** Default: a pty with `xterm-256color`, 80×24. Pass `false` for none. */
  pty?: boolean | PtyOptions
  /** Environment variables (the server keeps only those its AcceptEnv allows). */
  env?: Record<string, string>
  /** Aborts opening the shell; {@link SshClient.shell} then rejects with an AbortError. */
  signal?: AbortSignal
  /** Forward the local agent to this shell (default: the connection's `agentForward`). */
  agentForward?: boolean
  /** Forward X11 connections from this shell to a local display. */
  x11?: boolean | X11Options
}

/** Runs `fn` with a native cancel token tied to `signal`. @internal */
export async function withSignal<T>(signal: AbortSignal | undefined, fn: (cancel?: InstanceType<typeof binding.NativeCancel>) => Promise<T>): Promise<T> {
  if (!signal) return native(() => fn(undefined))
  if (!(signal instanceof AbortSignal)) throw new ConfigError('signal: must be an AbortSignal', { option: 'signal' })
  if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason })
  const cancel = new binding.NativeCancel()
  const onAbort = (): void => cancel.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await native(() => fn(cancel))
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}

/**
 * An authenticated SSH connection. Create one with {@link connect} or {@link SshClient.builder}.
 *
 * Emits `'close'` (with a `DisconnectError`/`TimeoutError`, or nothing after {@link SshClient.close})
 * once the connection ends for any reason. Keeps the process alive while open, like a socket.
 */
export class SshClient extends EventEmitter {
  readonly #native: NativeClient
  readonly #closed: Promise<Error | undefined>
  #closeError: Error | undefined
  #isClosed = false

  /** Resolves when the connection has ended, with the error that ended it (undefined after close()). */
  get closed(): Promise<Error | undefined> {
    return this.#closed
  }

  /** @internal */
  constructor(nat: NativeClient, closed: Promise<Error | undefined>) {
    super()
    this.#native = nat
    this.#closed = closed.then((err) => {
      this.#isClosed = true
      this.#closeError = err
      // an 'error' event nobody listens to would crash the process: 'close' carries the error
      this.emit('close', err)
      return err
    })
  }

  /** A fluent builder for connection options. */
  static builder(): SshClientBuilder {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { SshClientBuilder: B } = require('./builder') as typeof import('./builder')
    return new B()
  }

  /** The server's host key. */
  get hostKey(): {
    /** e.g. `ssh-ed25519` */
    algorithm: string
    /** `SHA256:…`, as `ssh-keygen -l` prints it */
    fingerprint: string
    /** `type base64`, as in known_hosts */
    publicKey: string
  } | undefined {
    const k = this.#native.hostKey
    return k ? { algorithm: k.algorithm, fingerprint: k.fingerprint, publicKey: k.publicKey } : undefined
  }

  /** The negotiated algorithms. */
  get algorithms(): NegotiatedAlgorithms | undefined {
    return this.#native.algorithms ?? undefined
  }

  /** The server's authentication banner, if it sent one. */
  get banner(): string | undefined {
    return this.#native.banner ?? undefined
  }

  /** True once the connection has ended. */
  get isClosed(): boolean {
    return this.#isClosed || this.#native.closed
  }

  #checkOpen(): void {
    if (this.isClosed) throw this.#closeError ?? fromNative('\u0001ferrossh:{"code":"ERR_SSH_DISCONNECTED","message":"connection closed: the client was closed","reason":"closed","description":"the client was closed"}')
  }

  /**
   * Runs a command and collects its output.
   * @example
   * const { stdout, code } = await ssh.exec('uname -a')
   */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (typeof command !== 'string' || command.length === 0) throw new ConfigError('exec: command must be a non-empty string', { option: 'command' })
    this.#checkOpen()
    const { stdin, env, pty, timeout, maxBuffer, signal, check, agentForward } = options
    const x11 = x11ToNative(options.x11)
    if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0))) throw new ConfigError('timeout: must be a positive number of milliseconds', { option: 'timeout' })
    if (maxBuffer !== undefined && (typeof maxBuffer !== 'number' || !(maxBuffer >= 0))) throw new ConfigError('maxBuffer: must be a number of bytes', { option: 'maxBuffer' })
    let result: ExecResult
    let truncated = false
    if (stdin instanceof Readable) {
      ;({ result, truncated } = await this.#execStreaming(command, stdin, options))
    } else {
      let input: Buffer | undefined
      if (stdin !== undefined) {
        if (typeof stdin === 'string') input = Buffer.from(stdin)
        else if (stdin instanceof Uint8Array) input = Buffer.from(stdin.buffer, stdin.byteOffset, stdin.byteLength)
        else throw new ConfigError('stdin: must be a string, Buffer, Uint8Array or Readable', { option: 'stdin' })
      }
      const out = await withSignal(signal, (cancel) =>
        this.#native.exec(command, { env: envToNative(env), pty: ptyToNative(pty), stdin: input, maxBuffer, timeoutMs: timeout, agentForward, x11 }, cancel),
      )
      result = { stdout: out.stdout, stderr: out.stderr, ...toExitStatus(out.exit) }
      truncated = out.truncated
    }
    if (truncated) {
      throw new CommandError(`output of '${command}' exceeded maxBuffer (${maxBuffer} bytes)`, {
        reason: 'maxBuffer', exitCode: result.code, signal: result.signal, stdout: result.stdout, stderr: result.stderr,
      })
    }
    if (check && (result.code !== 0 || result.signal !== null)) {
      const how = result.signal ? `was killed by signal ${result.signal}` : `exited with status ${result.code}`
      const tail = result.stderr.toString('utf8', Math.max(0, result.stderr.length - 300)).trim()
      throw new CommandError(`command '${command}' ${how}${tail ? `: ${tail}` : ''}`, {
        reason: 'exit', exitCode: result.code, signal: result.signal, stdout: result.stdout, stderr: result.stderr,
      })
    }
    return result
  }

  async #execStreaming(command: string, stdin: Readable, o: ExecOptions): Promise<{ result: ExecResult; truncated: boolean }> {
    const p = this.spawn(command, { env: o.env, pty: o.pty, signal: o.signal, agentForward: o.agentForward, x11: o.x11 })
    const limit = o.maxBuffer ?? Infinity
    const collect = (r: Readable): Promise<{ data: Buffer; over: boolean }> =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = []
        let n = 0
        r.on('data', (c: Buffer) => {
          n += c.length
          chunks.push(c)
          if (n > limit) resolve({ data: Buffer.concat(chunks).subarray(0, limit), over: true })
        })
        r.once('end', () => resolve({ data: Buffer.concat(chunks), over: false }))
        r.once('error', reject)
      })
    stdin.pipe(p.stdin)
    const timer = o.timeout ? setTimeout(() => void p.close(), o.timeout) : undefined
    try {
      const [out, err] = await Promise.all([collect(p.stdout), collect(p.stderr)])
      if (out.over || err.over) {
        await p.close()
        return { result: { stdout: out.data, stderr: err.data, code: null, signal: null }, truncated: true }
      }
      const status = await p.exited
      return { result: { stdout: out.data, stderr: err.data, ...status }, truncated: false }
    } finally {
      if (timer) clearTimeout(timer)
      stdin.unpipe(p.stdin)
    }
  }

  /**
   * Starts a command with streaming stdin/stdout/stderr.
   * @example
   * const p = ssh.spawn('tail -f /var/log/syslog')
   * p.stdout.pipe(process.stdout)
   * const { code } = await p.exited
   */
  spawn(command: string, options: SpawnOptions = {}): RemoteProcess {
    if (typeof command !== 'string' || command.length === 0) throw new ConfigError('spawn: command must be a non-empty string', { option: 'command' })
    this.#checkOpen()
    const env = envToNative(options.env)
    const pty = ptyToNative(options.pty)
    const x11 = x11ToNative(options.x11)
    const chan: Promise<NativeChannel> = withSignal(options.signal, (cancel) => this.#native.start(command, { env, pty, agentForward: options.agentForward, x11 }, cancel))
    chan.catch(() => {})
    return new RemoteProcess(chan, options.signal)
  }

  /** Opens an interactive shell (with a pty unless `pty: false`) as a Duplex. */
  async shell(options: ShellOptions = {}): Promise<ChannelDuplex> {
    this.#checkOpen()
    const env = envToNative(options.env)
    const pty = ptyToNative(options.pty ?? true)
    const x11 = x11ToNative(options.x11)
    const chan = await withSignal(options.signal, (cancel) => this.#native.start(null, { env, pty, agentForward: options.agentForward, x11 }, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  /** Starts a subsystem (e.g. `netconf`) as a raw Duplex. */
  async subsystem(name: string, options: { signal?: AbortSignal } = {}): Promise<ChannelDuplex> {
    if (typeof name !== 'string' || !name) throw new ConfigError('subsystem: name must be a non-empty string', { option: 'name' })
    this.#checkOpen()
    const chan = await withSignal(options.signal, (cancel) => this.#native.subsystem(name, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  /** Lets the process exit while this connection is open (like `socket.unref()`). */
  unref(): this {
    if (!this.isClosed) this.#native.setRef(false)
    return this
  }

  /** Keeps the process alive while this connection is open (the default). */
  ref(): this {
    if (!this.isClosed) this.#native.setRef(true)
    return this
  }

  /** Closes the connection; resolves once it is closed. */
  async close(): Promise<void> {
    if (!this.isClosed) await this.#native.close()
    await this.#closed
  }

  /** Closes the connection, so `await using ssh = await connect(…)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/**
 * Connects, verifies the host key (strictly, against known_hosts, by default) and authenticates.
 * @example
 * const ssh = await connect({ host: 'app.internal', username: 'deploy', privateKeyPath: '~/.ssh/id_ed25519' })
 */
export async function connect(options: ConnectOptions): Promise<SshClient> {
  const r = resolveOptions(options)
  let onClosed!: (err: Error | undefined) => void
  const closed = new Promise<Error | undefined>((resolve) => { onClosed = resolve })
  const onClose = (err: string | null): void => onClosed(err ? fromNative(err) : undefined)
  const nat = await withSignal(r.signal, (cancel) =>
    binding.NativeClient.connect(r.native, onClose, r.verify, r.keyboardInteractive, cancel, r.debug),
  )
  return new SshClient(nat, closed)
}

export type { HostKeyInfo }
