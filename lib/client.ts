import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'

import { CommandError, ConfigError, emitFromPromise, fromNative, native, TimeoutError } from './errors'
import { RemoteProcess, type ExecOptions, type ExecResult, type SpawnOptions, toExitStatus } from './exec'
import binding, { type NativeChannel, type NativeClient } from './native'
import { checkCallOptions, checkRequestString, type ConnectOptions, optionsOf, type HostKeyInfo, envToNative, ptyToNative, resolveOptions, type PtyOptions, type X11Options, x11ToNative } from './options'
import { ChannelDuplex } from './stream'
import type { SshClientBuilder } from './builder'
import type { DynamicForwardOptions, Forward, LocalForwardOptions, LocalUnixForwardOptions, RemoteForwardOptions, RemoteUnixForwardOptions } from './forward'
import { expandJump, hopOptions, isNoJump, noJump, withoutJump } from './jump'
import { applySshConfig } from './config'
import { call, withSignal } from './signal'
import { SftpClient } from './sftp'
import { ChannelError, ProxyError } from './errors'

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

/**
 * An authenticated SSH connection. Create one with {@link connect} or {@link SshClient.builder}.
 *
 * Emits `'close'` (with a `DisconnectError`/`TimeoutError`, or nothing after {@link SshClient.close})
 * once the connection ends for any reason. Keeps the process alive while open, like a socket.
 */
export class SshClient extends EventEmitter {
  readonly #native: NativeClient
  readonly #closed: Promise<Error | undefined>
  readonly #forwards = new Set<Forward>()
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
    this.#closed = closed.then(async (err) => {
      this.#isClosed = true
      this.#closeError = err
      // forwards end with their connection: their listeners must not outlive it
      await Promise.all([...this.#forwards].map((f) => f.close().catch(() => {})))
      // an 'error' event nobody listens to would crash the process: 'close' carries the error
      emitFromPromise(this, 'close', err)
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
    options = optionsOf(options)
    if (typeof command !== 'string' || command.length === 0) throw new ConfigError('exec: command must be a non-empty string', { option: 'command' })
    checkRequestString(command, 'command', 'exec: the command')
    this.#checkOpen()
    const { stdin, env, pty, timeout, maxBuffer, signal, check, agentForward } = options
    checkCallOptions(options, 'exec')
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
        call(this.#native, 'exec', command, { env: envToNative(env), pty: ptyToNative(pty), stdin: input, maxBuffer, timeoutMs: timeout, agentForward, x11 }, cancel),
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

  /**
   * exec() with a Readable as stdin: the output is collected here. Ends at the first of:
   * both outputs ended and the exit status came, an output passed maxBuffer (the command is
   * closed), the timeout (closed, TimeoutError), a failure of stdin (closed, its error), or
   * of the channel.
   */
  #execStreaming(command: string, stdin: Readable, o: ExecOptions): Promise<{ result: ExecResult; truncated: boolean }> {
    const p = this.spawn(command, { env: o.env, pty: o.pty, signal: o.signal, agentForward: o.agentForward, x11: o.x11 })
    const limit = o.maxBuffer ?? Infinity
    return new Promise((resolve, reject) => {
      const chunks: [Buffer[], Buffer[]] = [[], []]
      const sizes = [0, 0]
      let settled = false
      let ended = 0
      let clearTimer: (() => void) | undefined
      const output = (i: number): Buffer => Buffer.concat(chunks[i]).subarray(0, limit)
      let closeListener: (() => void) | undefined
      const premature = (): void => {
        if (!stdin.readableEnded && !stdin.errored) fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))
      }
      const finish = (settle: () => void): void => {
        if (settled) return
        settled = true
        clearTimer?.()
        if (closeListener) stdin.off('close', closeListener)
        detach()
        settle()
      }
      // stdin is fed by hand rather than with pipe(): pipe() throws from inside the source's
      // 'data' event on a chunk that is no bytes (an object-mode Readable of numbers), which
      // nothing could catch; here such a chunk fails the call
      const onData = (c: unknown): void => {
        if (settled) return
        if (typeof c !== 'string' && !(c instanceof Uint8Array)) {
          return fail(new ConfigError(`stdin: a Readable of strings or Buffers is needed, got a chunk of type ${c === null ? 'null' : typeof c}`, { option: 'stdin' }))
        }
        if (!p.stdin.write(c)) stdin.pause()
      }
      const onDrain = (): void => void stdin.resume()
      const onEnd = (): void => void p.stdin.end()
      // the command took no more input (it exited): stop reading, as pipe() stops
      const onStdinGone = (): void => { detach(); stdin.pause() }
      const detach = (): void => {
        stdin.off('data', onData)
        stdin.off('end', onEnd)
        p.stdin.off('drain', onDrain)
        p.stdin.off('close', onStdinGone)
      }
      // like the Buffer-stdin path (and child_process's timeout): TERM first, then close
      const stop = (): void => {
        void p.kill('TERM').catch(() => {}).finally(() => p.close())
      }
      const fail = (err: unknown): void => {
        if (settled) return
        stop()
        finish(() => reject(err))
      }
      ;[p.stdout, p.stderr].forEach((r, i) => {
        r.on('data', (c: Buffer) => {
          if (settled) return
          sizes[i] += c.length
          chunks[i].push(c)
          if (sizes[i] > limit) {
            stop()
            finish(() => resolve({ result: { stdout: output(0), stderr: output(1), code: null, signal: null }, truncated: true }))
          }
        })
        r.once('error', fail)
        r.once('end', () => {
          if (++ended < 2) return
          p.exited.then(
            (status) => finish(() => resolve({ result: { stdout: output(0), stderr: output(1), ...status }, truncated: false })),
            fail,
          )
        })
      })
      // pipe() does not pass on a failing source: without this the command would wait for
      // the rest of its input for good. The listener stays: an error after the end is moot.
      stdin.on('error', fail)
      if (stdin.destroyed) {
        // gone before the call: its own error, or that it ended early
        if (stdin.errored) fail(stdin.errored)
        else if (!stdin.readableEnded) fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }))
      } else {
        stdin.once('close', premature)
        closeListener = premature
      }
      if (stdin.readableEnded) p.stdin.end()
      else if (!stdin.destroyed) {
        stdin.on('data', onData)
        stdin.once('end', onEnd)
        p.stdin.on('drain', onDrain)
        p.stdin.once('close', onStdinGone)
      }
      // Infinity is no timeout; Node's setTimeout fires at once past 2^31-1 ms, so a longer
      // one is waited out in steps. Unref'd: a pending exec holds the process only through
      // its connection (which is ref'd unless you unref() it).
      if (o.timeout && Number.isFinite(o.timeout)) clearTimer = unrefTimer(o.timeout, () => fail(new TimeoutError(`exec timed out after ${o.timeout} ms`, { phase: 'exec' })))
    })
  }

  /**
   * Starts a command with streaming stdin/stdout/stderr.
   * @example
   * const p = ssh.spawn('tail -f /var/log/syslog')
   * p.stdout.pipe(process.stdout)
   * const { code } = await p.exited
   */
  spawn(command: string, options: SpawnOptions = {}): RemoteProcess {
    options = optionsOf(options)
    if (typeof command !== 'string' || command.length === 0) throw new ConfigError('spawn: command must be a non-empty string', { option: 'command' })
    checkRequestString(command, 'command', 'spawn: the command')
    this.#checkOpen()
    checkCallOptions(options, 'spawn')
    const env = envToNative(options.env)
    const pty = ptyToNative(options.pty)
    const x11 = x11ToNative(options.x11)
    const chan: Promise<NativeChannel> = withSignal(options.signal, (cancel) => call(this.#native, 'start', command, { env, pty, agentForward: options.agentForward, x11 }, cancel))
    chan.catch(() => {})
    return new RemoteProcess(chan, options.signal)
  }

  /** Opens an interactive shell (with a pty unless `pty: false`) as a Duplex. */
  async shell(options: ShellOptions = {}): Promise<ChannelDuplex> {
    options = optionsOf(options)
    this.#checkOpen()
    checkCallOptions(options, 'shell')
    const env = envToNative(options.env)
    const pty = ptyToNative(options.pty ?? true)
    const x11 = x11ToNative(options.x11)
    const chan = await withSignal(options.signal, (cancel) => call(this.#native, 'start', null, { env, pty, agentForward: options.agentForward, x11 }, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  /** Starts a subsystem (e.g. `netconf`) as a raw Duplex. */
  async subsystem(name: string, options: { signal?: AbortSignal } = {}): Promise<ChannelDuplex> {
    options = optionsOf(options)
    if (typeof name !== 'string' || !name) throw new ConfigError('subsystem: name must be a non-empty string', { option: 'name' })
    checkRequestString(name, 'name', 'subsystem: the name')
    checkCallOptions(options, 'subsystem')
    this.#checkOpen()
    const chan = await withSignal(options.signal, (cancel) => call(this.#native, 'subsystem', name, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  /**
   * A direct-tcpip channel: the server connects to `host:port`, the Duplex carries the bytes.
   * @example
   * const db = await ssh.openTcp('db.internal', 5432)
   */
  async openTcp(host: string, port: number, options: { signal?: AbortSignal } = {}): Promise<ChannelDuplex> {
    options = optionsOf(options)
    if (typeof host !== 'string' || !host) throw new ConfigError('openTcp: host must be a non-empty string', { option: 'host' })
    checkPort('port', port, false)
    this.#checkOpen()
    const chan = await withSignal(options.signal, (cancel) => call(this.#native, 'openTcp', host, port, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  /** A channel to a Unix socket on the server (direct-streamlocal@openssh.com), as a Duplex. */
  async openUnix(path: string, options: { signal?: AbortSignal } = {}): Promise<ChannelDuplex> {
    options = optionsOf(options)
    if (typeof path !== 'string' || !path) throw new ConfigError('openUnix: path must be a non-empty string', { option: 'path' })
    this.#checkOpen()
    const chan = await withSignal(options.signal, (cancel) => call(this.#native, 'openUnix', path, cancel))
    return new ChannelDuplex(Promise.resolve(chan))
  }

  async #track(f: Forward): Promise<Forward> {
    // the connection ended while the listener was being set up: the sweep of #forwards has
    // run already, so this one is closed here, before the call rejects
    if (this.isClosed) {
      await f.close().catch(() => {})
      this.#checkOpen()
    }
    this.#forwards.add(f)
    const close = f.close.bind(f)
    return Object.freeze({ ...pick(f), close: async () => { this.#forwards.delete(f); await close() } })
  }

  /**
   * `ssh -L`: listens locally; each connection reaches `remoteHost:remotePort` (or `remotePath`)
   * through the server. Bytes are copied natively.
   * @example
   * const fwd = await ssh.forwardLocal({ localPort: 0, remoteHost: 'db', remotePort: 5432 })
   * console.log(fwd.localPort); await fwd.close()
   */
  async forwardLocal(options: LocalForwardOptions): Promise<Forward> {
    const o = forwardOptions(options, 'forwardLocal')
    this.#checkOpen()
    const target = remoteTarget(o)
    const localHost = optHost(o, 'localHost') ?? '127.0.0.1'
    const localPort = o.localPort === undefined ? 0 : checkPort('localPort', o.localPort, true)
    const f = await call(this.#native, 'forwardLocal', { bindHost: localHost, bindPort: localPort, target })
    return await this.#track(nativeForward(f))
  }

  /** `ssh -L /path:…`: a local Unix socket listener forwarded through the server. */
  async forwardLocalUnix(options: LocalUnixForwardOptions): Promise<Forward> {
    const o = forwardOptions(options, 'forwardLocalUnix')
    if (typeof o.localPath !== 'string' || !o.localPath) throw new ConfigError('forwardLocalUnix: localPath is required', { option: 'localPath' })
    this.#checkOpen()
    const f = await call(this.#native, 'forwardLocal', { bindPath: o.localPath as string, target: remoteTarget(o) })
    return await this.#track(nativeForward(f))
  }

  /** `ssh -D`: a local SOCKS 4, 4a and 5 proxy whose connections go out from the server. */
  async forwardDynamic(options: DynamicForwardOptions = {}): Promise<Forward> {
    options = optionsOf(options)
    const o = forwardOptions(options, 'forwardDynamic')
    this.#checkOpen()
    const localHost = optHost(o, 'localHost') ?? '127.0.0.1'
    const localPort = o.localPort === undefined ? 0 : checkPort('localPort', o.localPort, true)
    const f = await call(this.#native, 'forwardDynamic', localHost, localPort)
    return await this.#track(nativeForward(f))
  }

  /**
   * `ssh -R`: the server listens on `remoteHost:remotePort` (0 = any, reported) and its
   * connections come to `localHost:localPort` (or `localPath`).
   */
  async forwardRemote(options: RemoteForwardOptions): Promise<Forward> {
    const o = forwardOptions(options, 'forwardRemote')
    this.#checkOpen()
    const bind = optHost(o, 'remoteHost') ?? 'localhost'
    const port = o.remotePort === undefined ? 0 : checkPort('remotePort', o.remotePort, true)
    const target = localTarget(o)
    const bound = await call(this.#native, 'forwardRemote', bind, port, target)
    const nat = this.#native
    return await this.#track({ remotePort: bound, close: async () => { if (!this.isClosed) await call(nat, 'cancelForwardRemote', bind, bound).catch(() => {}) } })
  }

  /** `ssh -R /path:…`: the server listens on a Unix socket. */
  async forwardRemoteUnix(options: RemoteUnixForwardOptions): Promise<Forward> {
    const o = forwardOptions(options, 'forwardRemoteUnix')
    if (typeof o.remotePath !== 'string' || !o.remotePath) throw new ConfigError('forwardRemoteUnix: remotePath is required', { option: 'remotePath' })
    this.#checkOpen()
    const path = o.remotePath as string
    await call(this.#native, 'forwardRemoteUnix', path, localTarget(o))
    const nat = this.#native
    return await this.#track({ close: async () => { if (!this.isClosed) await call(nat, 'cancelForwardRemoteUnix', path).catch(() => {}) } })
  }

  /**
   * A new client whose connection runs through this one (a jump); closing it leaves this
   * connection open. `sshConfig` and `proxyJump` apply as in `connect()`, the hops reached
   * through this connection.
   * @example
   * const db = await bastion.jump({ host: 'db', sshConfig: true })
   */
  async jump(options: ConnectOptions): Promise<SshClient> {
    this.#checkOpen()
    return connectChain(options, this)
  }

  /**
   * Starts an SFTP session on this connection.
   * @example
   * const sftp = await ssh.sftp()
   * for (const name of await sftp.readdir('.')) console.log(name)
   */
  async sftp(options: { signal?: AbortSignal } = {}): Promise<SftpClient> {
    options = optionsOf(options)
    this.#checkOpen()
    const n = await withSignal(options.signal, (cancel) => call(binding.NativeSftp, 'open', this.#native, cancel))
    return new SftpClient(n)
  }

  /** @internal */
  get nativeHandle(): NativeClient {
    return this.#native
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
export async function connect(input: ConnectOptions): Promise<SshClient> {
  return connectChain(input, undefined)
}

/** The longest delay Node's setTimeout takes. */
const MAX_TIMER = 2 ** 31 - 1

/** Calls `fn` after `ms` (any length), without keeping the process alive; returns the cancel. */
function unrefTimer(ms: number, fn: () => void): () => void {
  let t: NodeJS.Timeout | undefined
  const arm = (left: number): void => {
    t = setTimeout(() => (left > MAX_TIMER ? arm(left - MAX_TIMER) : fn()), Math.min(left, MAX_TIMER))
    t.unref()
  }
  arm(ms)
  return () => clearTimeout(t)
}

/** `host:port` as a message shows it (IPv6 in brackets). */
function hostPort(host: unknown, port: unknown): string {
  const h = String(host)
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? 22}`
}

/**
 * Connects to the target of `input` (its sshConfig applied) through its proxyJump hops, the
 * first of them reached through `base` when given (`ssh.jump()`).
 */
async function connectChain(input: ConnectOptions, base: SshClient | undefined): Promise<SshClient> {
  const sshConfig = input && typeof input === 'object' ? input.sshConfig : undefined
  const options = input && typeof input === 'object' ? await applySshConfig(input) : input
  const jump = options && typeof options === 'object' ? options.proxyJump : undefined
  if (noJump(jump)) return connectVia(options, base, false)
  // 'none' has already kept the file's route out (applySshConfig); what is left is direct
  // (or through `base`, for ssh.jump())
  if (isNoJump(jump)) return connectVia(withoutJump(options) as ConnectOptions, base, false)
  const { proxyJump: _ignored, ...target } = options
  if (target.proxy !== undefined || target.proxyCommand !== undefined) {
    throw new ConfigError('proxyJump cannot be combined with proxy or proxyCommand', { option: 'proxyJump' })
  }
  const hops = await expandJump(jump, sshConfig, options, (h) => h instanceof SshClient)
  let via = base
  let owned = false
  // which hop `via` is, for errors: undefined for `base` (the caller's own client)
  let viaHop: { i: number; name: string; host?: string } | undefined
  const opened: SshClient[] = []
  const refusals = new WeakSet<object>()
  // a channel the previous hop could not open is that hop's refusal, not the next one's failure
  const step = async (o: ConnectOptions): Promise<SshClient> => {
    try {
      return await connectVia(o, via, owned)
    } catch (e) {
      if (!(e instanceof ChannelError) || viaHop === undefined) throw e
      throw refused(new ProxyError(`jump host ${viaHop.i} (${viaHop.name}) could not open a connection to ${hostPort(o.host, o.port)}: ${e.reason}`, { hop: viaHop.i, host: viaHop.host }, { cause: e }))
    }
  }
  const refused = (e: ProxyError): ProxyError => {
    refusals.add(e)
    return e
  }
  // every hop and the target are checked before the first hop is dialled: bad options fail
  // before any packet is sent, as they do without hops
  for (const [i, hop] of hops.entries()) {
    if (hop instanceof SshClient) {
      if (hop.isClosed) throw new ProxyError(`jump host ${i} is a closed client`, { hop: i })
      // a connected client is a connection of its own: nothing this call opened can lead to it
      if (i > 0 || base) throw new ConfigError(`proxyJump: hop ${i} is a connected SshClient, which can only be the first hop of connect()`, { option: 'proxyJump' })
      continue
    }
    if (hop === null || typeof hop !== 'object' || typeof (hop as ConnectOptions).host !== 'string') {
      throw new ConfigError(`proxyJump: hop ${i} must be 'user@host:port', connect options or an SshClient`, { option: 'proxyJump' })
    }
    try {
      resolveOptions(hopOptions(hop as Partial<ConnectOptions>, target as ConnectOptions))
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e
      throw new ConfigError(`proxyJump: hop ${i} (${(hop as ConnectOptions).host}): ${e.message}`, { option: e.option ?? 'proxyJump', file: e.file, line: e.line })
    }
  }
  resolveOptions(target as ConnectOptions)
  try {
    for (const [i, hop] of hops.entries()) {
      if (hop instanceof SshClient) {
        via = hop
        owned = false
        viaHop = { i, name: 'a connected client' }
        continue
      }
      const hopOpts = hopOptions(hop as Partial<ConnectOptions>, target as ConnectOptions)
      try {
        via = await step(hopOpts)
      } catch (e) {
        if (e instanceof ConfigError || refusals.has(e as object) || (e as Error).name === 'AbortError') throw e
        throw new ProxyError(`jump host ${i} (${hopOpts.host}${hopOpts.port ? `:${hopOpts.port}` : ''}) failed: ${(e as Error).message}`, { hop: i, host: hopOpts.host }, { cause: e })
      }
      opened.push(via)
      owned = true
      viaHop = { i, name: hostPort(hopOpts.host, hopOpts.port), host: hopOpts.host }
    }
    return await step(target as ConnectOptions)
  } catch (e) {
    // the hops we opened go with the failure; a client the caller passed in stays open
    for (const c of opened.reverse()) await c.close().catch(() => {})
    throw e
  }
}

async function connectVia(options: ConnectOptions, via: SshClient | undefined, owned: boolean): Promise<SshClient> {
  // the chain is dialled by connectChain: a route left here would be dropped without a word
  if (options && typeof options === 'object' && !noJump(options.proxyJump)) throw new ConfigError('proxyJump: hops were not expanded', { option: 'proxyJump' })
  const r = resolveOptions(options)
  let onClosed!: (err: Error | undefined) => void
  const closed = new Promise<Error | undefined>((resolve) => { onClosed = resolve })
  const onClose = (err: string | null): void => onClosed(err ? fromNative(err) : undefined)
  const bridge = r.sock ? bridgeSocket(r.sock) : undefined
  const nat = await withSignal(r.signal, (cancel) =>
    binding.NativeClient.connect(r.native, onClose, r.verify, r.keyboardInteractive, cancel, r.debug, via?.nativeHandle, owned, bridge),
  ).catch((e: unknown) => {
    bridge?.end()
    throw e
  })
  const client = new SshClient(nat, closed)
  if (via && owned) {
    // a hop we opened lives exactly as long as the connection through it, and keeps the
    // process alive only through it: the target's ref()/unref() decides for the chain
    via.unref()
    void client.closed.then(() => via.close())
  }
  return client
}

/** Carries SSH over a caller's Duplex: what it reads goes to the native side, and back. */
function bridgeSocket(sock: import('node:stream').Duplex): InstanceType<typeof binding.NativeSocketBridge> {
  const bridge = new binding.NativeSocketBridge((chunk: Buffer | null | undefined) => {
    if (chunk) sock.write(chunk)
    else sock.end()
  })
  sock.on('data', (d: Buffer) => bridge.push(Buffer.isBuffer(d) ? d : Buffer.from(d)))
  sock.once('end', () => bridge.end())
  sock.once('close', () => bridge.end())
  // the connection reports the failure; an 'error' nobody listens to must not crash
  sock.on('error', () => bridge.end())
  return bridge
}

function pick(f: Forward): Omit<Forward, 'close'> {
  const out: Record<string, unknown> = {}
  for (const k of ['localPort', 'localAddress', 'localPath', 'remotePort'] as const) if (f[k] !== undefined && f[k] !== null) out[k] = f[k]
  return out as Omit<Forward, 'close'>
}

function nativeForward(f: InstanceType<typeof binding.NativeForward>): Forward {
  return {
    localPort: f.localPort ?? undefined,
    localAddress: f.localAddress ?? undefined,
    localPath: f.localPath ?? undefined,
    close: () => native(() => f.close()),
  }
}

function forwardOptions(o: unknown, what: string): Record<string, unknown> {
  if (o === null || typeof o !== 'object') throw new ConfigError(`${what}: needs an options object`, { option: what })
  return o as Record<string, unknown>
}

function checkPort(option: string, v: unknown, zeroOk: boolean): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (zeroOk ? 0 : 1) || v > 65535) {
    throw new ConfigError(`${option}: must be an integer between ${zeroOk ? 0 : 1} and 65535`, { option })
  }
  return v
}

function optHost(o: Record<string, unknown>, option: string): string | undefined {
  const v = o[option]
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !v) throw new ConfigError(`${option}: must be a non-empty string`, { option })
  return v
}

function remoteTarget(o: Record<string, unknown>): { host?: string; port?: number; path?: string } {
  if (o.remotePath !== undefined) {
    if (typeof o.remotePath !== 'string' || !o.remotePath) throw new ConfigError('remotePath: must be a non-empty string', { option: 'remotePath' })
    if (o.remoteHost !== undefined || o.remotePort !== undefined) throw new ConfigError('remotePath: give either remotePath or remoteHost/remotePort', { option: 'remotePath' })
    return { path: o.remotePath }
  }
  const host = optHost(o, 'remoteHost')
  if (!host) throw new ConfigError('remoteHost: is required (or remotePath)', { option: 'remoteHost' })
  return { host, port: checkPort('remotePort', o.remotePort, false) }
}

function localTarget(o: Record<string, unknown>): { host?: string; port?: number; path?: string } {
  if (o.localPath !== undefined) {
    if (typeof o.localPath !== 'string' || !o.localPath) throw new ConfigError('localPath: must be a non-empty string', { option: 'localPath' })
    return { path: o.localPath }
  }
  return { host: optHost(o, 'localHost') ?? '127.0.0.1', port: checkPort('localPort', o.localPort, false) }
}

export type { HostKeyInfo }
