import { EventEmitter } from 'node:events'
import type { Readable, Writable } from 'node:stream'

import { AbortError, emitFromPromise, fromNative } from './errors'
import type { NativeChannel, NativeExitInfo } from './native'
import { checkSignalName, checkTerminalSize, type PtyOptions, type X11Options } from './options'
import { ChannelReadable, ChannelWritable, ExitWatch, wireChannel } from './stream'

/** How a remote process ended. */
export interface ExitStatus {
  /** Exit status, or null when it ended by a signal (or the server sent none). */
  code: number | null
  /** Signal name without `SIG` (`'TERM'`), or null. */
  signal: string | null
}

/** Result of {@link SshClient.exec}. */
export interface ExecResult extends ExitStatus {
  /** Everything the command wrote to stdout. */
  stdout: Buffer
  /** Everything the command wrote to stderr. */
  stderr: Buffer
}

/** Options of {@link SshClient.exec}. */
export interface ExecOptions {
  /** Sent to the command's stdin, then EOF. A Readable is piped. */
  stdin?: string | Buffer | Uint8Array | Readable
  /** Environment variables (the server keeps only those its AcceptEnv allows). */
  env?: Record<string, string>
  /** Request a pseudo-terminal. */
  pty?: boolean | PtyOptions
  /** Milliseconds before the command is abandoned with a TimeoutError. */
  timeout?: number
  /** Bytes of stdout or stderr kept at most; more rejects with CommandError reason 'maxBuffer'. */
  maxBuffer?: number
  /** Aborts the command (it is sent SIGTERM and its channel closed); exec rejects with an AbortError. */
  signal?: AbortSignal
  /** Reject with CommandError when the exit status is not 0 or a signal ended it. */
  check?: boolean
  /** Forward the local agent to this command (default: the connection's `agentForward`). */
  agentForward?: boolean
  /** Forward X11 connections from this command to a local display. */
  x11?: boolean | X11Options
}

/** Options of {@link SshClient.spawn}. */
export interface SpawnOptions {
  /** Environment variables (the server keeps only those its AcceptEnv allows). */
  env?: Record<string, string>
  /** Request a pseudo-terminal. */
  pty?: boolean | PtyOptions
  /** Aborts the command: it is sent SIGTERM, its channel closed and its streams destroyed with an AbortError. */
  signal?: AbortSignal
  /** Forward the local agent to this command (default: the connection's `agentForward`). */
  agentForward?: boolean
  /** Forward X11 connections from this command to a local display. */
  x11?: boolean | X11Options
}

/** @internal */
export function toExitStatus(e: NativeExitInfo): ExitStatus {
  return { code: e.code ?? null, signal: e.signal ?? null }
}

/**
 * A command running on the server, with Node streams. `exited` resolves once the exit
 * status and the end of the output have arrived (a server may send the status first): a
 * flowing stdout has delivered every byte by then, and its 'end' follows.
 */
export class RemoteProcess extends EventEmitter {
  /** The command's stdin; ending it sends EOF. */
  readonly stdin: Writable
  /** The command's stdout. */
  readonly stdout: Readable
  /** The command's stderr (SSH extended data). */
  readonly stderr: Readable
  /** Resolves with `{ code, signal }`; rejects if the channel could not be opened or the connection broke. */
  readonly exited: Promise<ExitStatus>
  readonly #chan: Promise<NativeChannel>

  /** @internal */
  constructor(chan: Promise<NativeChannel>, signal?: AbortSignal) {
    super()
    this.#chan = chan
    const out = new ChannelReadable(0)
    const err = new ChannelReadable(1)
    this.stdout = out
    this.stderr = err
    const stdin = new ChannelWritable(chan)
    this.stdin = stdin
    const exit = new ExitWatch()
    chan.then(
      (c) => wireChannel(c, [out.source, err.source], stdin, () => exit.check(c)),
      (e) => {
        exit.fail(e)
        out.destroy(e)
        err.destroy(e)
        ;(this.stdin as Writable).destroy(e)
      },
    )
    this.exited = exit.promise.then(toExitStatus)
    this.exited.catch(() => {}) // handled here: awaiting it still sees the rejection
    exit.promise.then(
      // the channel is closed: nothing written now can arrive (child_process destroys stdin on exit)
      () => { if (!stdin.writableFinished) stdin.destroy() },
      // the connection broke: every stream hears it, read or not, as a reset socket does
      // (after what is still to be read)
      (e: Error) => {
        out.source.broken()
        err.source.broken()
        stdin.destroy(e)
      },
    )
    if (signal) {
      const onAbort = (): void => {
        const e = new AbortError(undefined, { cause: signal.reason })
        chan.then(async (c) => {
          await c.signal('TERM').catch(() => {})
          // as child_process reports a process its signal killed: the exit that signal causes
          // is waited for a moment before the channel goes
          let timer: NodeJS.Timeout | undefined
          await Promise.race([this.exited.catch(() => {}), new Promise((r) => { timer = setTimeout(r, 500); timer.unref() })])
          clearTimeout(timer)
          await c.close()
        }, () => {}).catch(() => {})
        out.destroy(e)
        err.destroy(e)
        ;(this.stdin as Writable).destroy(e)
      }
      if (signal.aborted) onAbort()
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.exited.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {})
      }
    }
    this.exited.then((s) => emitFromPromise(this, 'exit', s.code, s.signal), () => {})
    // as ChildProcess: 'close' once it exited and its output streams have closed
    const closed = (r: Readable): Promise<void> => (r.closed ? Promise.resolve() : new Promise((res) => r.once('close', () => res())))
    // an output nobody ever consumed (no listener, never resumed or paused) would never
    // close, and 'close' never come (ChildProcess drains such stdio on exit and loses it): once
    // `exited` has settled every byte has arrived, so it is not waited for, and what it holds
    // stays readable
    const unused = (r: Readable): boolean => r.readableFlowing === null && r.listenerCount('data') === 0 && r.listenerCount('readable') === 0
    this.exited.then((s) => Promise.all([out, err].map((r) => (unused(r) ? undefined : closed(r)))).then(() => emitFromPromise(this, 'close', s.code, s.signal)), () => {})
  }

  /** Sends a signal (`'TERM'`, `'INT'`, `'KILL'`, …) to the remote process. */
  async kill(signal = 'TERM'): Promise<void> {
    checkSignalName(signal)
    const c = await this.#chan
    try {
      await c.signal(signal)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Changes the pseudo-terminal size, in characters and (optionally, as `ssh` sends them) pixels. */
  async resize(cols: number, rows: number, width = 0, height = 0): Promise<void> {
    checkTerminalSize(cols, rows, width, height)
    const c = await this.#chan
    try {
      await c.resize(cols, rows, width, height)
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Closes the channel (the remote process usually gets SIGHUP). */
  async close(): Promise<void> {
    const c = await this.#chan.catch(() => undefined)
    await c?.close().catch(() => {})
  }
}
