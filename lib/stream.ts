import { Duplex, Readable, Writable } from 'node:stream'

import { fromNative } from './errors'
import type { NativeChannel, NativeExitInfo } from './native'
import { checkSignalName, checkTerminalSize } from './options'

/** Bytes per scratch buffer: at least the core's wake threshold (1 MiB) so a woken
 * reader drains a whole batch in one native call. */
const SCRATCH = 1024 * 1024 + 64 * 1024
/**
 * A stream's first scratch buffer. Most streams never carry a bulk batch (a shell's stderr,
 * a command with little output, a server session's extended data), and a full-size scratch
 * for each made every open channel hold 2 MiB of ArrayBuffer memory, counted by V8 towards
 * its GC triggers and by `process.memoryUsage()`. The first read that fills this one hands it
 * over whole and moves the stream to a full-size scratch.
 */
const SCRATCH_FIRST = 16 * 1024
/** What an ended stream keeps instead of its scratch buffer. */
const NO_SCRATCH = Buffer.alloc(0)
/**
 * Above this a read hands its scratch buffer over instead of copying out of it. Half the
 * scratch: a consumer that keeps its chunks keeps at most twice their size in memory (a
 * bulk batch fills the scratch, so bulk reads still go out without a copy).
 */
const HAND_OVER = SCRATCH / 2

const noop = (): void => {}
const EMPTY = Buffer.alloc(0)

/** What a reader needs of a native channel (a client channel or a server session's). @internal */
export interface ReadableNativeChannel {
  read(stream: number, buf: Buffer): number
  takeError(): string | null
  setWaker(cb: (stream: number) => void): void
  /** Drops one stream's bytes from now on: its reader is gone. */
  discardStream?(stream: number): void
}

/**
 * Drains one stream (0 = stdout, 1 = stderr) of a channel with synchronous native reads.
 * The native side wakes `pump()` only after a read found nothing (it is then "armed").
 * @internal
 */
export class ChannelSource {
  #chan: ReadableNativeChannel | undefined
  #scratch = Buffer.allocUnsafeSlow(SCRATCH_FIRST)
  #waiting = false
  #ended = false
  /** A failure that came while the consumer still had bytes to read: delivered after them. */
  #failure: Error | undefined
  constructor(
    readonly stream: number,
    private readonly push: (chunk: Buffer | null) => boolean,
    private readonly fail: (err: Error) => void,
    /** Bytes pushed but not yet read by the consumer. */
    private readonly buffered: () => number = () => 0,
  ) {}

  attach(chan: ReadableNativeChannel): void {
    this.#chan = chan
    if (this.#ended) return void chan.discardStream?.(this.stream)
    if (this.#waiting) this.pump()
  }

  /**
   * The reader is gone (its stream was destroyed before the end): the channel drops this
   * stream's bytes from now on, so they never fill its buffer and stop the connection, and
   * the other stream still delivers.
   */
  drop(): void {
    if (this.#ended) return
    this.#ended = true
    this.#waiting = false
    this.#scratch = NO_SCRATCH
    this.#chan?.discardStream?.(this.stream)
  }

  /**
   * The connection broke: a stream nobody reads hears it now (it would never ask), after
   * whatever is still to be read, which stays readable first.
   */
  broken(): void {
    if (!this.#ended) this.pump()
  }

  /** Moves bytes to the consumer until it wants no more, nothing is left, or the end. */
  pump(): void {
    const chan = this.#chan
    this.#waiting = true
    if (this.#failure) {
      // an empty push lets the stream ask again once more of it was read
      if (this.buffered() > 0) return void this.push(EMPTY)
      const e = this.#failure
      this.#failure = undefined
      this.#waiting = false
      return this.fail(e)
    }
    if (!chan || this.#ended) return
    for (;;) {
      const n = chan.read(this.stream, this.#scratch)
      if (n > 0) {
        let chunk: Buffer
        if (n >= HAND_OVER || n === this.#scratch.length) {
          chunk = this.#scratch.subarray(0, n)
          this.#scratch = Buffer.allocUnsafeSlow(SCRATCH)
        } else {
          chunk = Buffer.allocUnsafe(n)
          this.#scratch.copy(chunk, 0, 0, n)
        }
        if (!this.push(chunk)) {
          this.#waiting = false
          return
        }
        continue
      }
      if (n === 0) return // armed: the native side calls wake()
      this.#ended = true
      this.#waiting = false
      this.#scratch = NO_SCRATCH
      if (n === -1) {
        this.push(null)
        return
      }
      const e = fromNative(chan.takeError() ?? 'the connection was lost')
      // bytes the consumer has not read yet are not thrown away with the stream: the
      // failure waits until they are read (destroying now would drop them)
      if (this.buffered() > 0) {
        this.#failure = e
        this.#waiting = true
        this.push(EMPTY)
        return
      }
      this.fail(e)
      return
    }
  }

  wake(): void {
    if (this.#waiting) this.pump()
  }

  get ended(): boolean {
    return this.#ended
  }
}

/** A Readable fed by one stream of a channel. @internal */
export class ChannelReadable extends Readable {
  readonly source: ChannelSource
  constructor(stream: number) {
    super({ highWaterMark: 1024 * 1024 })
    this.source = new ChannelSource(stream, (c) => this.push(c), (e) => this.destroy(e), () => this.readableLength)
    // errors reach pipeline()/for-await/'error' listeners; with none, never crash the process
    this.on('error', noop)
  }
  override _read(): void {
    this.source.pump()
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.source.drop()
    cb(err)
  }
}

/** Stream id of a drain wake: the native write queue fell below its mark. */
const DRAIN = 2
/** Stream id of a release wake: every lent write buffer has been packetized. */
const RELEASED = 3
/** Chunks at least this large are lent to the native side instead of copied. */
const LEND_MIN = 64 * 1024
/**
 * The Writable side's highWaterMark, as large as the read side's default buffer. A lent
 * write calls back only once russh has packetized it, and the stream hands over the next
 * batch only then, so each batch is at most this much: 1 MiB woke the event loop twice as
 * often per byte sent, at twice its CPU (A/B, 256 MiB upload, 10 rounds: 0.07 → 0.035 s).
 * The chunks waiting in the stream are the caller's own Buffers, not copies.
 */
const WRITE_HIGH_WATER = 4 * 1024 * 1024

/**
 * Sends to a channel. Small writes are copied into the native queue without a promise each
 * (one lock and a notify); when the queue is full the callback waits for a drain wake.
 * Large chunks are lent, not copied: the native side sends straight from the Buffer, and
 * the callback waits until it has done so, as net.Socket's does, so a caller that reuses its
 * Buffer after the callback never changes bytes still on their way. EOF on end.
 * @internal
 */
export class ChannelWritable extends Writable {
  #chan: NativeChannel | undefined
  #ready: Promise<NativeChannel>
  #pending: ((err?: Error | null) => void) | undefined
  #lent: ((err?: Error | null) => void) | undefined
  constructor(chan: Promise<NativeChannel>) {
    super({ highWaterMark: WRITE_HIGH_WATER, decodeStrings: true })
    this.#ready = chan
    chan.then((c) => { this.#chan = c }, () => {})
    this.on('error', noop)
  }
  /** @internal */
  drained(): void {
    const cb = this.#pending
    this.#pending = undefined
    if (cb && !this.#settle(cb)) this.#lent = cb
  }
  /** @internal */
  released(): void {
    const cb = this.#lent
    if (!cb) return void this.#chan?.reclaim()
    this.#lent = undefined
    if (!this.#settle(cb)) this.#lent = cb
  }
  /** Calls back once no lent buffer is out: with the writer's error if it gave up. */
  #settle(cb: (err?: Error | null) => void): boolean {
    const c = this.#chan
    const r = c ? c.reclaim() : 0
    if (r > 0) return false
    cb(r < 0 && c ? fromNative(c.takeError() ?? 'the channel is closed') : undefined)
    return true
  }
  #send(c: NativeChannel, chunks: Buffer[], cb: (err?: Error | null) => void): void {
    let lent = false
    let full = false
    for (const chunk of chunks) {
      const lend = chunk.length >= LEND_MIN
      const r = lend ? c.writeLent(chunk) : c.writeQueued(chunk)
      if (r < 0) return cb(fromNative(c.takeError() ?? 'the channel is closed'))
      if (lend) lent = true
      if (r === 0) full = true
    }
    if (lent) {
      if (!this.#settle(cb)) this.#lent = cb
    } else if (full) {
      this.#pending = cb
    } else {
      cb()
    }
  }
  #sendWhenReady(chunks: Buffer[], cb: (err?: Error | null) => void): void {
    const c = this.#chan
    if (c) return this.#send(c, chunks, cb)
    this.#ready.then((ch) => this.#send(ch, chunks, cb), (e) => cb(fromNative(e)))
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#sendWhenReady([chunk], cb)
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#sendWhenReady(chunks.map((c) => c.chunk), cb)
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.#ready.then((c) => c.finishQueued()).then(() => cb(), (e) => cb(fromNative(e)))
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // destroyed before end(): the remote side still gets EOF, as a closed pipe gives a
    // local process (what was written goes first)
    if (!this.writableFinished) this.#ready.then((c) => c.finishQueued()).catch(noop)
    cb(err)
  }
}

/** Stream id of an exit wake: the exit status and the output's end arrived, or the channel closed or broke. */
const EXITED = 4

/**
 * The `exited` of a command or shell: settled from the channel's exit wake and a synchronous
 * look at its state, so a running command holds no pending native call, and an unref()'d
 * connection lets the process exit as a socket would.
 * @internal
 */
export class ExitWatch {
  readonly promise: Promise<NativeExitInfo>
  #resolve!: (e: NativeExitInfo) => void
  #reject!: (e: unknown) => void
  #done = false
  constructor() {
    this.promise = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }
  /** Looks at the channel: settles if its end is known. */
  check(chan: NativeChannel): void {
    if (this.#done) return
    let e: NativeExitInfo | null
    try {
      e = chan.pollExit()
    } catch (x) {
      return this.fail(fromNative(x))
    }
    if (e) {
      this.#done = true
      this.#resolve(e)
    }
  }
  /** The channel never opened, or its end is an error. */
  fail(err: unknown): void {
    if (this.#done) return
    this.#done = true
    this.#reject(err)
  }
}

/** Installs the single wake callback of a channel for its two sources. @internal */
export function wireChannel(chan: ReadableNativeChannel, sources: ChannelSource[], writer?: ChannelWritable, onExit?: () => void): void {
  chan.setWaker((stream: number) => {
    if (stream === DRAIN) return writer?.drained()
    if (stream === RELEASED) return writer?.released()
    if (stream === EXITED) {
      // all the output has arrived: hand what is buffered to waiting readers first, so their
      // 'data' handlers have run when `exited` settles
      for (const s of sources) s.wake()
      return onExit?.()
    }
    for (const s of sources) if (s.stream === stream) s.wake()
  })
  for (const s of sources) s.attach(chan)
  // it may have ended before the callback was in place
  onExit?.()
}

/**
 * A shell or subsystem as one Duplex: reading gives the remote output, writing sends input.
 * `stderr` carries extended data; `exited` resolves with the exit status.
 */
export class ChannelDuplex extends Duplex {
  /** The remote side's stderr (extended data). */
  readonly stderr: Readable
  /** Resolves with `{ code, signal }` once the remote side exited and its output has all arrived. */
  readonly exited: Promise<{
    /** Exit status, or null when it ended by a signal (or the server sent none). */
    code: number | null
    /** Signal name without `SIG` (`'TERM'`), or null. */
    signal: string | null
  }>
  readonly #chan: Promise<NativeChannel>
  readonly #out: ChannelSource
  readonly #in: ChannelWritable
  /** @internal */
  constructor(chan: Promise<NativeChannel>) {
    super({ readableHighWaterMark: 1024 * 1024, writableHighWaterMark: WRITE_HIGH_WATER, allowHalfOpen: true })
    this.#chan = chan
    this.#out = new ChannelSource(0, (c) => this.push(c), (e) => this.destroy(e), () => this.readableLength)
    const err = new ChannelReadable(1)
    this.stderr = err
    this.#in = new ChannelWritable(chan)
    this.on('error', noop)
    const exit = new ExitWatch()
    chan.then((c) => wireChannel(c, [this.#out, err.source], this.#in, () => exit.check(c)), (e) => {
      exit.fail(e)
      this.destroy(e)
      err.destroy(e)
    })
    this.exited = exit.promise.then((e) => ({ code: e.code ?? null, signal: e.signal ?? null }))
    this.exited.catch(noop)
    // the remote side is gone: nothing written from now on can arrive, so the writable side
    // ends (a shell's Duplex then closes once its output is read, as a socket does)
    exit.promise.then(() => { if (!this.writableEnded && !this.destroyed) this.end() }, noop)
    // the connection broke: the Duplex and its stderr hear it even when nobody reads them
    exit.promise.catch(() => {
      this.#out.broken()
      err.source.broken()
    })
  }

  /** Changes the pseudo-terminal size (`stty size` on the remote side follows), in characters and (optionally, as `ssh` sends them) pixels. */
  async resize(cols: number, rows: number, width = 0, height = 0): Promise<void> {
    checkTerminalSize(cols, rows, width, height)
    const c = await this.#chan
    await c.resize(cols, rows, width, height).catch((e: unknown) => { throw fromNative(e) })
  }

  /** Sends a signal (`'TERM'`, `'INT'`, …) to the remote process. */
  async kill(signal = 'TERM'): Promise<void> {
    checkSignalName(signal)
    const c = await this.#chan
    await c.signal(signal).catch((e: unknown) => { throw fromNative(e) })
  }

  /** Closes the channel. */
  async close(): Promise<void> {
    const c = await this.#chan.catch(() => undefined)
    await c?.close().catch(noop)
  }
  /** @internal */
  override _read(): void {
    this.#out.pump()
  }
  /** @internal */
  override _write(chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#in._write(chunk, enc, cb)
  }
  /** @internal */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.#in._writev(chunks, cb)
  }
  /** @internal */
  override _final(cb: (err?: Error | null) => void): void {
    this.#in._final(cb)
  }
  /** @internal */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // destroyed before both directions ended (an error, or the user gave up): close the
    // channel so the server session ends and nothing is kept. After a normal end (EOF both
    // ways, autoDestroy) the server closes it, after sending the exit status.
    // a `for await` loop that read the output to its end destroys the stream with an
    // AbortError of Node's own (its writable side is still open): the output did end
    const outputEnded = this.readableEnded && (!err || (err as NodeJS.ErrnoException).code === 'ABORT_ERR')
    if (!outputEnded) this.#chan.then((c) => c.close(), noop).catch(noop)
    else if (!this.writableFinished) {
      // the output ended but our side was never ended: the exit status comes with or just
      // after the server's EOF, so it is waited for a moment before the channel goes, or
      // `exited` would lose it
      let timer: NodeJS.Timeout | undefined
      const waited = Promise.race([this.exited.catch(noop), new Promise((r) => { timer = setTimeout(r, 500); timer.unref() })])
      waited.finally(() => {
        clearTimeout(timer)
        return this.#chan.then((c) => c.close(), noop)
      }).catch(noop)
    }
    this.#out.drop()
    // stderr keeps what it has after a normal end (its reader may not be done), and hears
    // the error that ended the shell
    if (err) this.stderr.destroy(err)
    cb(err)
  }
}
