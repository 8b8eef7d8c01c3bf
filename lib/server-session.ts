import { EventEmitter } from 'node:events'
import { Readable, Writable } from 'node:stream'

import { ChannelError, ConfigError, fromNative } from './errors'
import type { NativeChannelEvent, NativeServerChannel, NativeSessionStart } from './native'
import { terminalModesByName } from './options'
import { ChannelReadable, ChannelSource, wireChannel } from './stream'

const noop = (): void => {}

/** Signal names RFC 4254 §6.10 defines (without `SIG`). */
const SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2'])

/** The pseudo-terminal a client asked for (`ssh -t`), kept up to date by window changes. */
export interface ServerPty {
  /** Terminal type, e.g. `xterm-256color` (the client's `$TERM`). */
  term: string
  /** Width in characters. */
  cols: number
  /** Height in rows. */
  rows: number
  /** Width in pixels (0 when the client does not say). */
  width: number
  /** Height in pixels (0 when the client does not say). */
  height: number
  /** Encoded terminal modes as `[opcode, value]` pairs (RFC 4254 §8). */
  modes: [number, number][]
  /**
   * The same modes by name, as ssh2's server gives them (`{ ECHO: 1, VINTR: 3, TTY_OP_OSPEED:
   * 38400 }`); an opcode RFC 4254 does not name is only in `modes`.
   */
  modeNames: Record<string, number>
}

function ptyOf(p: NonNullable<NativeSessionStart['pty']>): ServerPty {
  const modes = p.modes.map(([a, b]) => [a, b] as [number, number])
  return { term: p.term, cols: p.cols, rows: p.rows, width: p.width, height: p.height, modes, modeNames: terminalModesByName(modes) }
}

/** A new terminal size, as the `'resize'` event of a {@link ServerSession} reports it. */
export interface ServerResize {
  /** Width in characters. */
  cols: number
  /** Height in rows. */
  rows: number
  /** Width in pixels (0 when the client does not say). */
  width: number
  /** Height in pixels (0 when the client does not say). */
  height: number
}

/** Who is connected: part of every context the server's callbacks get. */
export interface ServerContext {
  /** The user name the client logged in (or is trying to log in) as. */
  user: string
  /** The client's IP address. */
  remoteAddress: string
  /** The client's TCP port. */
  remotePort: number
  /** Server-wide number of the connection (increasing from 1). */
  connectionId: number
}

/** @internal */
export function contextOf(user: string, c: NativeSessionStart['connection']): ServerContext {
  return { user, remoteAddress: c.remoteAddress, remotePort: c.remotePort, connectionId: c.id }
}

/** Output to the client: `stream` 0 is its stdout, 1 its stderr. End of output is sent once both end. */
class ServerWritable extends Writable {
  readonly #chan: NativeServerChannel
  readonly #stream: number
  constructor(chan: NativeServerChannel, stream: number) {
    super({ highWaterMark: 1024 * 1024, decodeStrings: true })
    this.#chan = chan
    this.#stream = stream
    // a client that went away fails the writes; nobody has to listen for that
    this.on('error', noop)
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#chan.write(this.#stream, chunk).then(() => cb(), (e: unknown) => cb(fromNative(e)))
  }
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    this.#chan.writeMany(this.#stream, chunks.map((c) => c.chunk)).then(() => cb(), (e: unknown) => cb(fromNative(e)))
  }
}

function finished(w: Writable): Promise<void> {
  if (w.writableFinished || w.destroyed) return Promise.resolve()
  return new Promise((resolve) => {
    const done = (): void => {
      w.off('finish', done)
      w.off('close', done)
      resolve()
    }
    w.once('finish', done)
    w.once('close', done)
  })
}

/**
 * One session a client started on the server: an `exec` command, a `shell` or a subsystem.
 * Read the client's input from `stdin`, write to `stdout` / `stderr`, and end it with
 * {@link ServerSession.exit} (or {@link ServerSession.kill}).
 *
 * Emits `'resize'` ({@link ServerResize}) when the client's terminal changes size,
 * `'signal'` (a name such as `'INT'`) when the client sends a signal, and `'close'` once the
 * session is over (ended here, closed by the client, or the connection lost).
 *
 * @example
 * createServer({ auth, exec: async (ctx) => {
 *   ctx.stdout.write(`you ran ${ctx.command}\n`)
 *   return 0 // the exit status; a rejected promise exits with 1
 * } })
 */
export class ServerSession extends EventEmitter implements ServerContext {
  /** What the client started. */
  readonly kind: 'exec' | 'shell' | 'subsystem'
  /** The command line of an `exec` session. */
  readonly command: string | undefined
  /** The subsystem name of a `subsystem` session. */
  readonly subsystem: string | undefined
  /** The user name the client logged in as. */
  readonly user: string
  /** The client's IP address. */
  readonly remoteAddress: string
  /** The client's TCP port. */
  readonly remotePort: number
  /** Server-wide number of the connection. */
  readonly connectionId: number
  /** Environment variables the client sent (those `acceptEnv` lets through). */
  readonly env: Record<string, string>
  /** The pseudo-terminal, when the client asked for one (updated on `'resize'`). */
  readonly pty: ServerPty | undefined
  /** The client's input; it ends when the client sends EOF. */
  readonly stdin: Readable
  /** The client's stdout. */
  readonly stdout: Writable
  /** The client's stderr. */
  readonly stderr: Writable
  readonly #chan: NativeServerChannel
  #ended = false
  #closed = false
  /** The session ended before what was written, or its exit status, reached the client. */
  #lost: Error | undefined

  /** @internal */
  constructor(req: NativeSessionStart, chan: NativeServerChannel) {
    super()
    this.#chan = chan
    this.kind = req.kind as 'exec' | 'shell' | 'subsystem'
    this.command = req.command ?? undefined
    this.subsystem = req.subsystem ?? undefined
    const ctx = contextOf(req.user, req.connection)
    this.user = ctx.user
    this.remoteAddress = ctx.remoteAddress
    this.remotePort = ctx.remotePort
    this.connectionId = ctx.connectionId
    this.env = Object.fromEntries(req.env.map(([k, v]) => [k, v]))
    this.pty = req.pty ? ptyOf(req.pty) : undefined
    const stdin = new ChannelReadable(0)
    this.stdin = stdin
    // extended data from a client has no consumer: drain it so it never holds the connection
    const ext = new ChannelSource(1, () => true, noop)
    this.stdout = new ServerWritable(chan, 0)
    this.stderr = new ServerWritable(chan, 1)
    wireChannel(chan, [stdin.source, ext])
    ext.pump()
    // once both outputs have ended, the client gets EOF (RFC 4254 §5.3). Not when they were
    // ended by exit() or kill(): those send the status first and then EOF, because a client may
    // answer EOF with its CLOSE at once (an OpenSSH ControlMaster does), after which russh has
    // closed the channel and a status can no longer go out
    Promise.all([finished(this.stdout), finished(this.stderr)]).then(() => {
      if (!this.#closed && !this.#ended) chan.eof().catch(noop)
    }, noop)
    chan.setEventHandler((ev: NativeChannelEvent) => this.#event(ev))
  }

  #event(ev: NativeChannelEvent): void {
    if (ev.kind === 'resize') {
      const size = { cols: ev.cols ?? 0, rows: ev.rows ?? 0, width: ev.width ?? 0, height: ev.height ?? 0 }
      if (this.pty) Object.assign(this.pty, size)
      this.emit('resize', size)
    } else if (ev.kind === 'signal') {
      this.emit('signal', ev.signal ?? '')
    } else if (ev.kind === 'close') {
      if (this.#closed) return
      this.#closed = true
      this.#ended = true
      // the client closed the channel or went away first: bytes written but not yet sent
      // never reached it; the output errors, and exit()/kill() reject, instead of ending as if
      // all went out (an output with nothing pending just closes)
      for (const w of [this.stdout, this.stderr]) {
        if (w.writableFinished) continue
        if (w.writableLength > 0) {
          this.#lost ??= new ChannelError('the session closed before its output was sent (the client closed the channel or disconnected)', { reason: 'closed' })
          w.destroy(this.#lost)
        } else {
          w.destroy()
        }
      }
      this.emit('close')
    }
  }

  /** True once the session is over. */
  get closed(): boolean {
    return this.#closed
  }

  /** Throws when written output did not reach the client (a write failed, or the session closed first). */
  #checkSent(): void {
    const failed = this.#lost ?? this.stdout.errored ?? this.stderr.errored
    if (failed) throw failed
  }

  async #flush(): Promise<void> {
    for (const w of [this.stdout, this.stderr]) if (!w.writableEnded && !w.destroyed) w.end()
    await Promise.all([finished(this.stdout), finished(this.stderr)])
  }

  /**
   * Ends the session with an exit status (default 0), after what was written has been sent.
   * Rejects with a `ChannelError` (reason `'closed'`) when the client closed the channel or
   * went away before what was written reached it (after a clean end it resolves, a no-op).
   */
  async exit(code = 0): Promise<void> {
    if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) throw new ConfigError('exit: code must be an integer from 0 to 4294967295', { option: 'code' })
    if (this.#lost) throw this.#lost
    if (this.#ended) return
    this.#ended = true
    await this.#flush()
    this.#checkSent()
    await this.#chan.exit(code).catch(noop)
    if (this.#lost) throw this.#lost
  }

  /**
   * Ends the session as killed by a signal (`'TERM'`, `'KILL'`, …): the client sees no exit
   * status but the signal, as for a process that died of it.
   */
  async kill(signal = 'TERM', message?: string): Promise<void> {
    const name = typeof signal === 'string' ? signal.replace(/^SIG/, '') : ''
    if (!SIGNALS.has(name)) throw new ConfigError(`kill: unknown signal ${String(signal)}: use a name such as TERM, INT, KILL or HUP`, { option: 'signal' })
    if (message !== undefined && typeof message !== 'string') throw new ConfigError(`kill: message must be a string, got ${typeof message}`, { option: 'message' })
    if (this.#lost) throw this.#lost
    if (this.#ended) return
    this.#ended = true
    await this.#flush()
    this.#checkSent()
    await this.#chan.exitSignal(name, false, message ?? '').catch(noop)
    if (this.#lost) throw this.#lost
  }

  /** Closes the session's channel without an exit status. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#ended = true
    await this.#chan.close().catch(noop)
  }
}
