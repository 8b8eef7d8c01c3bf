import { mkdir as mkdirLocal, unlink as unlinkLocal, readdir as readdirLocal, lstat as lstatLocal, readlink as readlinkLocal, realpath as realpathLocal, symlink as symlinkLocal, stat as statLocal } from 'node:fs/promises'
import { constants as fsConstants } from 'node:fs'
import { join, posix, sep } from 'node:path'
import { setMaxListeners } from 'node:events'
import { Readable, Writable } from 'node:stream'

import { AbortError, ConfigError, SftpError } from './errors'
import binding from './native'
import { call, withSignal } from './signal'
import { checkOptionNames, intOf, optionsOf } from './options'
import { ChannelSource } from './stream'

type NativeSftp = InstanceType<typeof binding.NativeSftp>

type NativeStat = { size?: number | null; uid?: number | null; gid?: number | null; mode?: number | null; atime?: number | null; mtime?: number | null }

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000
const S_IFLNK = 0o120000

/** File attributes, shaped like `fs.Stats` (SFTP v3 carries second resolution times). */
export class Stats {
  /** Size in bytes (a bigint with `{ bigint: true }`). */
  readonly size: number | bigint
  /** Permission and file type bits. */
  readonly mode: number
  /** Owner user id. */
  readonly uid: number
  /** Owner group id. */
  readonly gid: number
  /** Last access, in milliseconds since the epoch. */
  readonly atimeMs: number
  /** Last modification, in milliseconds since the epoch. */
  readonly mtimeMs: number
  /** Last access. */
  readonly atime: Date
  /** Last modification. */
  readonly mtime: Date
  /** @internal */
  constructor(s: NativeStat, bigint = false) {
    this.size = bigint ? BigInt(s.size ?? 0) : (s.size ?? 0)
    this.mode = s.mode ?? 0
    this.uid = s.uid ?? 0
    this.gid = s.gid ?? 0
    this.atimeMs = (s.atime ?? 0) * 1000
    this.mtimeMs = (s.mtime ?? 0) * 1000
    this.atime = new Date(this.atimeMs)
    this.mtime = new Date(this.mtimeMs)
  }
  /** A regular file. */
  isFile(): boolean { return (this.mode & S_IFMT) === S_IFREG }
  /** A directory. */
  isDirectory(): boolean { return (this.mode & S_IFMT) === S_IFDIR }
  /** A symbolic link (only from `lstat`). */
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === S_IFLNK }
}

/** A directory entry, shaped like `fs.Dirent`, with its attributes. */
export class Dirent {
  /** The entry's name (no path). */
  readonly name: string
  /** The directory it is in. */
  readonly parentPath: string
  /** `ls -l` style line from the server. */
  readonly longname: string
  /** The entry's attributes (not following symlinks). */
  readonly stats: Stats
  /** @internal */
  constructor(e: { name: string; longname: string; stat: NativeStat }, parentPath: string) {
    this.name = e.name
    this.parentPath = parentPath
    this.longname = e.longname
    this.stats = new Stats(e.stat)
  }
  /** A regular file. */
  isFile(): boolean { return this.stats.isFile() }
  /** A directory. */
  isDirectory(): boolean { return this.stats.isDirectory() }
  /** A symbolic link. */
  isSymbolicLink(): boolean { return this.stats.isSymbolicLink() }
}

/** `statvfs@openssh.com` results. */
export interface StatFs {
  /** File system block size. */
  bsize: number
  /** Fragment size. */
  frsize: number
  /** Blocks in total (in fragments). */
  blocks: number
  /** Free blocks. */
  bfree: number
  /** Free blocks for unprivileged users. */
  bavail: number
  /** Inodes in total. */
  files: number
  /** Free inodes. */
  ffree: number
  /** Free inodes for unprivileged users. */
  favail: number
  /** File system id (64 bits). */
  fsid: bigint
  /** Mount flags. */
  flag: number
  /** Longest file name. */
  namemax: number
}

/** What an SFTP server offers. */
export interface SftpInfo {
  /** Extension names the server announced (posix-rename@openssh.com, …). */
  extensions: string[]
  /** Largest read request used, in bytes (the server's limit, at most 255 KiB). */
  maxRead: number
  /** Largest write request used, in bytes. */
  maxWrite: number
  /** Files the server lets one session hold open, when it says. */
  maxOpenHandles?: number
}

/** Result of {@link FileHandle.read}. */
export interface ReadResult<T extends NodeJS.ArrayBufferView = Buffer> {
  /** Bytes read (0 at end of file). */
  bytesRead: number
  /** The buffer (or TypedArray, or DataView) that was read into. */
  buffer: T
}

/** Progress of a transfer. */
export interface TransferProgress {
  /** Bytes done. */
  transferred: number
  /** Bytes in all (the file size, or the tree's total for directories). */
  total: number
}

/** Options of {@link SftpClient.download} and {@link SftpClient.upload}. */
export interface TransferOptions {
  /** Requests in flight (default 16). */
  concurrency?: number
  /** Bytes per request (default: the server's limit, at most 255 KiB). */
  chunkSize?: number
  /** Called with the progress, at most every 100 ms and once at the end. */
  onProgress?: (p: TransferProgress) => void
  /** Continue from the partial file a failed transfer left (`<dest>.ferrossh-partial`; for a name over 238 bytes, its first 221 bytes, `~`, a hash and that suffix). */
  resume?: boolean
  /** Leave the partial file after a failure instead of removing it. */
  keepPartial?: boolean
  /** Permission bits of an uploaded file (default: the local file's, as OpenSSH's `sftp put`; 0o644 on Windows). */
  mode?: number
  /**
   * Flush the finished file to disk before it is renamed into place, like OpenSSH's `sftp -f`
   * (default false, as there): a download syncs the local file; an upload asks the server with
   * fsync@openssh.com when it offers that extension.
   */
  fsync?: boolean
  /** Aborts the transfer (the partial file is removed unless `keepPartial`). */
  signal?: AbortSignal
}

/** Options of {@link SftpClient.downloadDir} and {@link SftpClient.uploadDir}. */
export interface DirTransferOptions extends Omit<TransferOptions, 'onProgress' | 'resume'> {
  /** Files transferred at once (default 4). */
  fileConcurrency?: number
  /** Return false to skip a path (relative to the source root, `/`-separated). */
  filter?: (path: string, isDirectory: boolean) => boolean
  /**
   * Symbolic links: `'skip'` (default), `'follow'` (copy what they point to) or `'preserve'`
   * (recreate the link). A followed link to a directory that contains it (`ln -s . loop`) is a
   * cycle: the transfer fails with an `SftpError` `ELOOP` before it copies anything.
   */
  symlinks?: 'skip' | 'follow' | 'preserve'
  /** Called with the progress across the whole tree. */
  onProgress?: (p: TransferProgress & { files: number; filesTotal: number }) => void
}

/** The option names each call takes, as fs spells them: any other is a misspelling, refused. */
const SFTP_OPTIONS = {
  stat: ['bigint'],
  lstat: ['bigint'],
  read: ['buffer', 'offset', 'length', 'position'],
  write: ['offset', 'length', 'position'],
  mkdir: ['recursive', 'mode'],
  // fs's retries are for EBUSY on Windows; nothing here retries
  rm: ['recursive', 'force', 'maxRetries', 'retryDelay'],
  rmdir: ['recursive', 'maxRetries', 'retryDelay'],
  readdir: ['withFileTypes', 'recursive', 'encoding'],
  readFile: ['encoding', 'flag', 'maxSize', 'signal'],
  writeFile: ['encoding', 'flag', 'mode', 'signal'],
  appendFile: ['encoding', 'flag', 'mode', 'signal'],
  createReadStream: ['start', 'end', 'highWaterMark', 'concurrency', 'encoding', 'signal'],
  createWriteStream: ['flags', 'start', 'mode', 'concurrency', 'encoding', 'signal'],
  download: ['concurrency', 'chunkSize', 'onProgress', 'resume', 'keepPartial', 'mode', 'fsync', 'signal'],
  upload: ['concurrency', 'chunkSize', 'onProgress', 'resume', 'keepPartial', 'mode', 'fsync', 'signal'],
  downloadDir: ['concurrency', 'chunkSize', 'keepPartial', 'mode', 'fsync', 'signal', 'fileConcurrency', 'filter', 'symlinks', 'onProgress'],
  uploadDir: ['concurrency', 'chunkSize', 'keepPartial', 'mode', 'fsync', 'signal', 'fileConcurrency', 'filter', 'symlinks', 'onProgress'],
} as const

/** An options argument of `call`: none, or an object of the names it takes (else a ConfigError). */
function optionsFor<T extends object>(o: T | null | undefined, call: keyof typeof SFTP_OPTIONS): T {
  const options = optionsOf(o)
  checkOptionNames(options, call, SFTP_OPTIONS[call])
  return options
}

/** A stream's `signal`, checked before anything is opened. */
function streamSignalOf(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (!(signal instanceof AbortSignal)) throw new ConfigError('signal: must be an AbortSignal', { option: 'signal' })
  return signal
}

/** As fs streams take a `signal`: its abort destroys the stream with an AbortError (closing the file). */
function destroyOnAbort(stream: Readable | Writable, signal: AbortSignal | undefined): void {
  if (!signal) return
  const onAbort = (): void => { stream.destroy(new AbortError(undefined, { cause: signal.reason })) }
  if (signal.aborted) {
    process.nextTick(onAbort)
    return
  }
  signal.addEventListener('abort', onAbort, { once: true })
  stream.once('close', () => signal.removeEventListener('abort', onAbort))
}

/** A followed symlink that leads back into a directory being walked. */
function loop(link: string, real: string): SftpError {
  return new SftpError(`ELOOP: '${link}' leads back to '${real}', a directory it is in (a symlink cycle)`, 'ELOOP', { status: 0, path: link })
}

function checkPath(p: unknown, option = 'path'): string {
  if (typeof p !== 'string' || p.length === 0) throw new ConfigError(`${option}: must be a non-empty string`, { option })
  if (p.includes('\0')) throw new ConfigError(`${option}: must not contain NUL`, { option })
  return p
}

function encodingOf(e: unknown): BufferEncoding | undefined {
  if (e === undefined || e === null) return undefined
  if (typeof e !== 'string' || !Buffer.isEncoding(e)) throw new ConfigError(`encoding: unknown encoding ${JSON.stringify(e)}`, { option: 'encoding' })
  return e
}

/** What a write sends: a string's bytes in `encoding`, or the caller's bytes themselves. */
function bytesOf(data: unknown, encoding: BufferEncoding = 'utf8'): Buffer {
  if (typeof data === 'string') return Buffer.from(data, encoding)
  // any typed array or DataView, as fs writes them: their bytes as they lie in memory
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  throw new ConfigError(`data: must be a string, Buffer, TypedArray or DataView, got ${data === null ? 'null' : typeof data}`, { option: 'data' })
}

/** The open flag strings, as fs spells them; the `s` (synchronous) forms mean the same here. */
const SYNC_FLAGS: Record<string, string> = { rs: 'r', sr: 'r', 'sr+': 'r+', as: 'a', sa: 'a', 'as+': 'a+', 'sa+': 'a+' }

/** fs.constants open flags as the flag string that means the same, or undefined. */
function flagsOfNumber(n: number): string | undefined {
  const { O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fsConstants
  const known = O_WRONLY | O_RDWR | O_CREAT | O_EXCL | O_TRUNC | O_APPEND | (fsConstants.O_SYNC ?? 0) | (fsConstants.O_DSYNC ?? 0) | (fsConstants.O_NOCTTY ?? 0)
  if (!Number.isInteger(n) || n < 0 || (n & ~known) !== 0) return undefined
  const rw = n & O_RDWR ? '+' : ''
  const x = n & O_EXCL ? 'x' : ''
  if (!(n & O_CREAT)) return n & (O_WRONLY | O_TRUNC | O_APPEND | O_EXCL) ? undefined : rw ? 'r+' : 'r'
  if (n & O_APPEND) return `a${x}${rw}`
  if (n & O_TRUNC || x) return `w${x}${rw}`
  return undefined
}

function flagsOf(f: unknown, option: string): string | undefined {
  if (typeof f === 'number') {
    const s = flagsOfNumber(f)
    if (s === undefined) throw new ConfigError(`${option}: ${f} is no combination of fs.constants O_* flags SFTP can open with`, { option })
    return s
  }
  if (f !== undefined && typeof f !== 'string') throw new ConfigError(`${option}: must be an open flag string such as 'w', 'a' or 'r+', or fs.constants O_* flags`, { option })
  return f === undefined ? undefined : SYNC_FLAGS[f] ?? f
}

function callbackOf<F>(f: F | undefined, option: string): F | undefined {
  if (f !== undefined && typeof f !== 'function') throw new ConfigError(`${option}: must be a function`, { option })
  return f
}

function modeOf(mode: number | string | undefined, option = 'mode'): number | undefined {
  if (mode === undefined) return undefined
  const m = typeof mode === 'string' ? parseInt(mode, 8) : mode
  if (!Number.isInteger(m) || m < 0 || m > 0o7777) throw new ConfigError(`${option}: must be permission bits such as 0o644`, { option })
  return m
}

/** Permission bits a call cannot do without (chmod): none is a ConfigError, as in fs. */
function requiredModeOf(mode: unknown, option = 'mode'): number {
  const m = mode === undefined || mode === null ? undefined : modeOf(mode as number | string, option)
  if (m === undefined) throw new ConfigError(`${option}: permission bits such as 0o644 are required`, { option })
  return m
}

function timeOf(t: number | string | Date, option: string): number {
  if (typeof t !== 'number' && typeof t !== 'string' && !(t instanceof Date)) {
    // null, true, an object: fs refuses them too (null is not "now" nor the epoch)
    throw new ConfigError(`${option}: must be a Date, a number of seconds or a date string, got ${t === null ? 'null' : typeof t}`, { option })
  }
  // a numeric string is seconds, as fs.utimes reads it; another string a date
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? (/^\s*-?\d+(\.\d+)?\s*$/.test(t) ? Number(t) * 1000 : Date.parse(t)) : t * 1000
  if (!Number.isFinite(ms)) throw new ConfigError(`${option}: must be a Date or seconds since the epoch`, { option })
  const s = Math.floor(ms / 1000)
  // SFTP v3 carries times as uint32 seconds: anything else would wrap (-100 → 2106)
  if (s < 0 || s > 0xffffffff) throw new ConfigError(`${option}: must be between 1970-01-01 and 2106-02-07 (SFTP v3 times are 32-bit)`, { option })
  return s
}

/** What `FileHandle.read` takes as options, as `fs.promises.FileHandle.read` does. */
export interface ReadOptions {
  /** Where the bytes go, any TypedArray or DataView (default: a new 16 KiB Buffer). */
  buffer?: NodeJS.ArrayBufferView
  /** Where in `buffer` (default 0). */
  offset?: number | null
  /** How many bytes at most (default: the rest of `buffer`). */
  length?: number | null
  /** Where in the file (default null or -1: the current position). */
  position?: number | null
}

/** A length as fs takes it: a negative integer is 0 (-Infinity and fractions are refused). */
function lengthOf(len: unknown): unknown {
  return Number.isInteger(len) && (len as number) < 0 ? 0 : len
}

/** An open remote file, shaped like `fs.promises.FileHandle`. */
export class FileHandle {
  readonly #sftp: NativeSftp
  readonly #handle: string
  #closed = false
  #position = 0
  /** Opened for appending: where the next write at the current position goes. */
  #appendAt: number | undefined
  /** What the open flags allow: a local descriptor refuses the rest with EBADF, and so does this. */
  readonly #readable: boolean
  readonly #writable: boolean
  /** @internal */
  constructor(sftp: NativeSftp, handle: string, position = 0, appendAt?: number, flags = 'r+') {
    this.#sftp = sftp
    this.#handle = handle
    this.#position = position
    this.#appendAt = appendAt
    this.#readable = flags.startsWith('r') || flags.includes('+')
    this.#writable = !flags.startsWith('r') || flags.includes('+')
  }
  #check(): void {
    if (this.#closed) throw new SftpError('EBADF: file handle is closed', 'EBADF', { status: 0 })
  }
  #checkMode(op: string, allowed: boolean, code = 'EBADF'): void {
    this.#check()
    // the server's answer would be "no such file" (OpenSSH maps EBADF so): say what it is
    if (!allowed) throw new SftpError(`${code}: ${op}: the file was not opened for ${op === 'read' ? 'reading' : 'writing'}`, code, { status: 0 })
  }
  /**
   * Reads into `buffer` at `offset` (default 0) up to `length` bytes (default: the rest of it);
   * returns the bytes read (0 at end of file). `position` null = current. As
   * `fs.promises.FileHandle.read`, it also takes `(buffer, { offset, length, position })`,
   * `({ buffer, offset, length, position })` and no arguments (a new 16 KiB buffer).
   */
  async read<T extends NodeJS.ArrayBufferView = Buffer>(buffer?: T | ReadOptions | null, offset: number | ReadOptions | null = 0, length?: number | null, position: number | null = null): Promise<ReadResult<T>> {
    // any TypedArray or DataView is a buffer, as fs reads into it; another object the options
    let target: unknown = buffer
    if (buffer === undefined || buffer === null || (typeof buffer === 'object' && !ArrayBuffer.isView(buffer))) {
      const o = (buffer ?? {}) as ReadOptions
      checkOptionNames(o, 'read', SFTP_OPTIONS.read)
      target = o.buffer ?? Buffer.alloc(16384)
      offset = o.offset ?? 0
      length = o.length ?? undefined
      position = o.position ?? null
    } else if (offset !== null && typeof offset === 'object') {
      const o = offset
      checkOptionNames(o, 'read', SFTP_OPTIONS.write)
      offset = o.offset ?? 0
      length = o.length ?? undefined
      position = o.position ?? null
    }
    // as fs: null means the default, and a position of -1 the current one
    return this.#read(target as T, (offset as number | null) ?? 0, length ?? undefined, position === -1 ? null : position ?? null)
  }
  async #read<T extends NodeJS.ArrayBufferView>(view: T, offset: number, length: number | undefined, position: number | null): Promise<ReadResult<T>> {
    this.#checkMode('read', this.#readable)
    if (!ArrayBuffer.isView(view)) throw new ConfigError(`buffer: must be a Buffer, TypedArray or DataView, got ${view === null ? 'null' : typeof view}`, { option: 'buffer' })
    // offset and length count bytes, whatever the view's element size (as fs counts them)
    const buffer = Buffer.isBuffer(view) ? view : Buffer.from(view.buffer, view.byteOffset, view.byteLength)
    intOf(offset, 'offset', 0, buffer.length)
    const len = intOf(length, 'length', 0, buffer.length - offset) ?? buffer.length - offset
    if (position !== null) {
      intOf(position, 'position', 0)
      return { bytesRead: await this.#readAt(buffer, offset, len, position), buffer: view }
    }
    // reads at the current position go one after the other, as on a local descriptor: each
    // starts where the one before ended (which only its reply tells)
    this.#readsPending++
    const turn = this.#reading.then(async () => {
      try {
        const n = await this.#readAt(buffer, offset, len, this.#position)
        this.#position += n
        return n
      } finally {
        this.#readsPending--
      }
    })
    this.#reading = turn.catch(() => {})
    return { bytesRead: await turn, buffer: view }
  }
  #reading: Promise<unknown> = Promise.resolve()
  #readsPending = 0
  async #readAt(buffer: Uint8Array, offset: number, length: number, at: number): Promise<number> {
    let done = 0
    while (done < length) {
      const chunk = await call(this.#sftp, 'read', this.#handle, at + done, Math.min(length - done, 255 * 1024))
      if (chunk.length === 0) break
      chunk.copy(buffer, offset + done)
      done += chunk.length
    }
    return done
  }
  /**
   * Writes `data` at `position` (null = current): `(data, position?)`. Called with more
   * arguments it takes them as `fs.promises.FileHandle.write` does: `(buffer, offset, length,
   * position)`, `(buffer, { offset, length, position })` or `(string, position, encoding)`,
   * instead of silently writing the whole buffer at `offset`. The current position is taken
   * (and advanced) before the request goes out, so writes issued without awaiting land one
   * after the other.
   */
  async write(data: Buffer | Uint8Array | string, a?: number | null | { offset?: number; length?: number; position?: number | null }, b?: number | BufferEncoding | null, c?: number | null): Promise<{
    /** Bytes written. */
    bytesWritten: number
  }> {
    this.#checkMode('write', this.#writable)
    let buf: Buffer
    let position: number | null
    if (typeof data === 'string') {
      buf = bytesOf(data, encodingOf(b ?? undefined))
      position = (a as number | null | undefined) ?? null
    } else if ((a !== null && typeof a === 'object') || arguments.length > 2) {
      const all = bytesOf(data)
      if (a !== null && typeof a === 'object') checkOptionNames(a, 'write', SFTP_OPTIONS.write)
      const o = a !== null && typeof a === 'object' ? a : { offset: a ?? undefined, length: (b as number | null | undefined) ?? undefined, position: c }
      const offset = intOf(o.offset, 'offset', 0, all.length) ?? 0
      const length = intOf(o.length, 'length', 0, all.length - offset) ?? all.length - offset
      buf = all.subarray(offset, offset + length)
      position = o.position ?? null
    } else {
      buf = bytesOf(data)
      position = (a as number | null | undefined) ?? null
    }
    // as fs: -1 is the current position, as null is
    if (position === -1) position = null
    if (position !== null) intOf(position, 'position', 0)
    // a read at the current position still waiting for its reply ends where only that reply
    // says: a write issued after it goes after it
    const afterRead = position === null && this.#readsPending > 0
    if (this.#appendAt !== undefined) {
      // opened for appending, the server writes every request at the end, whatever offset it
      // names: the requests of two writes in flight at once would land interleaved, so each
      // write waits for the one before it to land, as on a local descriptor
      const turn = this.#writing.then(() => (afterRead ? this.#reading : undefined)).then(() => this.#writeAt(buf, position))
      this.#writing = turn.catch(() => {})
      if (afterRead) this.#reading = this.#writing
      return turn
    }
    if (afterRead) {
      const turn = this.#reading.then(() => this.#writeAt(buf, null))
      this.#reading = turn.catch(() => {})
      return turn
    }
    return this.#writeAt(buf, position)
  }
  /** The last write of an append handle: the next one starts once it has landed. */
  #writing: Promise<unknown> = Promise.resolve()
  async #writeAt(buf: Buffer, position: number | null): Promise<{ bytesWritten: number }> {
    const at = position ?? this.#appendAt ?? this.#position
    if (position === null) {
      // after an append the position is the new end, as for a local file opened with O_APPEND
      if (this.#appendAt !== undefined) this.#appendAt += buf.length
      this.#position = this.#appendAt ?? this.#position + buf.length
    }
    await call(this.#sftp, 'write', this.#handle, at, buf)
    return { bytesWritten: buf.length }
  }
  /** Attributes of the open file. */
  async stat(options: { bigint?: boolean } = {}): Promise<Stats> {
    this.#check()
    return new Stats(await call(this.#sftp, 'fstat', this.#handle), optionsFor(options, 'stat').bigint)
  }
  /** Sets the file's length (a negative one is 0, as fs takes it). */
  async truncate(len = 0): Promise<void> {
    // ftruncate(2) of a descriptor not open for writing is EINVAL
    this.#checkMode('truncate', this.#writable, 'EINVAL')
    await call(this.#sftp, 'fsetstat', this.#handle, { size: intOf(lengthOf(len), 'size', 0) })
  }
  /** Sets access and modification times of the open file. */
  async utimes(atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    this.#check()
    await call(this.#sftp, 'fsetstat', this.#handle, { atime: timeOf(atime, 'atime'), mtime: timeOf(mtime, 'mtime') })
  }
  /** Changes permission bits. */
  async chmod(mode: number | string): Promise<void> {
    this.#check()
    await call(this.#sftp, 'fsetstat', this.#handle, { mode: requiredModeOf(mode) })
  }
  /** Flushes to disk on the server (fsync@openssh.com). */
  async sync(): Promise<void> {
    this.#check()
    await call(this.#sftp, 'fsync', this.#handle)
  }
  /** Closes the handle. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await call(this.#sftp, 'closeHandle', this.#handle)
  }
  /** Closes the handle at the end of an `await using` scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/** Options of {@link SftpClient.createReadStream}. */
export interface SftpReadStreamOptions {
  /** First byte to read. */
  start?: number
  /** Last byte to read, inclusive (as fs). */
  end?: number
  /** Bytes buffered before reading pauses (default 4 MiB). */
  highWaterMark?: number
  /** Reads in flight (default 16). */
  concurrency?: number
  /** Deliver strings in this encoding instead of Buffers (as `setEncoding`). */
  encoding?: BufferEncoding
  /** Its abort destroys the stream with an `AbortError` and closes the file, as fs's. */
  signal?: AbortSignal
}

/** What {@link SftpClient.createWriteStream} returns: a Writable that counts what has landed, as fs's WriteStream. */
export interface SftpWriteStream extends Writable {
  /**
   * Bytes the server has confirmed so far, from `start` without a gap (writes still in flight
   * are not counted): after a failure, `start + bytesWritten` is where a resume may begin.
   */
  readonly bytesWritten: number
}

/** Options of {@link SftpClient.createWriteStream}. */
export interface SftpWriteStreamOptions {
  /** Open flags as fs (`w` default, `a`, `r+`, `wx`, …). */
  flags?: string
  /** Byte position to start writing at. */
  start?: number
  /** Permission bits of a created file. */
  mode?: number
  /** Writes in flight (default 16). */
  concurrency?: number
  /** How strings written are encoded (default 'utf8'), as fs's `encoding`. */
  encoding?: BufferEncoding
  /** Its abort destroys the stream with an `AbortError` and closes the file, as fs's. */
  signal?: AbortSignal
}

/**
 * An SFTP session, shaped like `fs/promises`. Get one with `await ssh.sftp()`.
 * @example
 * const sftp = await ssh.sftp()
 * await sftp.download('/var/log/app.log', './app.log', { onProgress: console.log })
 */
export class SftpClient {
  readonly #n: NativeSftp
  /** @internal */
  constructor(n: NativeSftp) {
    this.#n = n
  }

  /** Extensions the server offers and its limits. */
  get info(): SftpInfo {
    const i = this.#n.info
    return { extensions: i.extensions, maxRead: i.maxRead, maxWrite: i.maxWrite, maxOpenHandles: i.maxOpenHandles ?? undefined }
  }

  /** Attributes, following symlinks. */
  async stat(path: string, options: { bigint?: boolean } = {}): Promise<Stats> {
    return new Stats(await call(this.#n, 'stat', checkPath(path)), optionsFor(options, 'stat').bigint)
  }
  /** Attributes of the link itself. */
  async lstat(path: string, options: { bigint?: boolean } = {}): Promise<Stats> {
    return new Stats(await call(this.#n, 'lstat', checkPath(path)), optionsFor(options, 'lstat').bigint)
  }
  /** True when the path exists (following symlinks). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path)
      return true
    } catch (e) {
      if ((e as SftpError).code === 'ENOENT') return false
      throw e
    }
  }
  /** Changes permission bits. */
  async chmod(path: string, mode: number | string): Promise<void> {
    await call(this.#n, 'setstat', checkPath(path), { mode: requiredModeOf(mode) })
  }
  /** Changes owner and group ids. */
  async chown(path: string, uid: number, gid: number): Promise<void> {
    if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid < 0 || gid < 0 || uid > 0xffffffff || gid > 0xffffffff) throw new ConfigError('chown: uid and gid must be non-negative integers', { option: 'uid' })
    await call(this.#n, 'setstat', checkPath(path), { uid, gid })
  }
  /** Sets access and modification times. */
  async utimes(path: string, atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    await call(this.#n, 'setstat', checkPath(path), { atime: timeOf(atime, 'atime'), mtime: timeOf(mtime, 'mtime') })
  }
  /** Truncates or extends a file. */
  async truncate(path: string, len = 0): Promise<void> {
    await call(this.#n, 'setstat', checkPath(path), { size: intOf(lengthOf(len), 'size', 0) })
  }
  /** The canonical absolute path. */
  async realpath(path: string): Promise<string> {
    return call(this.#n, 'realpath', checkPath(path))
  }
  /** The target of a symbolic link. */
  async readlink(path: string): Promise<string> {
    return call(this.#n, 'readlink', checkPath(path))
  }
  /** Creates `path` pointing to `target` (fs order). */
  async symlink(target: string, path: string): Promise<void> {
    await call(this.#n, 'symlink', checkPath(target, 'target'), checkPath(path))
  }
  /** A hard link (hardlink@openssh.com). */
  async hardlink(existing: string, newPath: string): Promise<void> {
    await call(this.#n, 'hardlink', checkPath(existing, 'existing'), checkPath(newPath, 'newPath'))
  }
  /** Renames, replacing an existing destination like fs.rename (posix-rename@openssh.com when offered). */
  async rename(from: string, to: string): Promise<void> {
    await call(this.#n, 'rename', checkPath(from, 'from'), checkPath(to, 'to'))
  }
  /** Removes a file. */
  async unlink(path: string): Promise<void> {
    await call(this.#n, 'unlink', checkPath(path))
  }
  /**
   * Copies on the server (copy-data extension): no byte crosses the network. `mode` takes
   * fs.constants.COPYFILE_EXCL (refuse an existing destination with EEXIST) and
   * COPYFILE_FICLONE (a plain copy here); COPYFILE_FICLONE_FORCE is ENOTSUP, as SFTP cannot
   * clone.
   */
  async copyFile(from: string, to: string, mode = 0): Promise<void> {
    checkPath(from, 'from')
    checkPath(to, 'to')
    const { COPYFILE_EXCL, COPYFILE_FICLONE, COPYFILE_FICLONE_FORCE } = fsConstants
    if (!Number.isInteger(mode) || mode < 0 || (mode & ~(COPYFILE_EXCL | COPYFILE_FICLONE | COPYFILE_FICLONE_FORCE)) !== 0) {
      throw new ConfigError('mode: must be 0 or fs.constants COPYFILE_* flags', { option: 'mode' })
    }
    if (mode & COPYFILE_FICLONE_FORCE) throw new SftpError(`ENOTSUP: copyfile '${from}' -> '${to}': SFTP cannot clone a file`, 'ENOTSUP', { status: 0, path: from })
    await call(this.#n, 'copyData', from, to, (mode & COPYFILE_EXCL) !== 0)
  }
  /** File system statistics (statvfs@openssh.com). */
  async statvfs(path: string): Promise<StatFs> {
    const s = await call(this.#n, 'statvfs', checkPath(path))
    return { bsize: s.blockSize, frsize: s.fragmentSize, blocks: s.blocks, bfree: s.blocksFree, bavail: s.blocksAvail, files: s.files, ffree: s.filesFree, favail: s.filesAvail, fsid: BigInt(s.fsid), flag: s.flags, namemax: s.nameMax }
  }
  /** Expands `~` and `~/…` (expand-path@openssh.com, else relative to the login directory). */
  async expandPath(path: string): Promise<string> {
    return call(this.#n, 'expandPath', checkPath(path))
  }

  /** Creates a directory; `recursive` creates parents and ignores an existing directory. */
  /** Makes a directory; `recursive` makes the parents too and resolves with the first one it made (as fs.mkdir). */
  async mkdir(path: string, options: { recursive?: boolean; mode?: number | string } | number | string = {}): Promise<string | undefined> {
    checkPath(path)
    // as fs: a bare number or string is the mode
    const o = typeof options === 'number' || typeof options === 'string' ? { mode: options } : optionsFor(options, 'mkdir')
    const mode = modeOf(o.mode)
    if (!o.recursive) {
      await call(this.#n, 'mkdir', path, mode)
      return undefined
    }
    const abs = path.startsWith('/')
    const parts = path.split('/').filter(Boolean)
    let cur = abs ? '' : '.'
    let first: string | undefined
    for (const [i, p] of parts.entries()) {
      cur = `${cur}/${p}`
      try {
        await call(this.#n, 'mkdir', cur, mode)
        first ??= abs ? cur : cur.slice(2)
      } catch (e) {
        if ((e as SftpError).code !== 'EEXIST') throw e
        if ((await this.stat(cur)).isDirectory()) continue
        // as fs.mkdir: a file at the end is EEXIST, one on the way ENOTDIR
        if (i === parts.length - 1) throw e
        throw new SftpError(`ENOTDIR: '${cur}' is not a directory`, 'ENOTDIR', { status: 0, path: cur })
      }
    }
    return first
  }
  /**
   * Removes a file, a link or (with `recursive`) a directory tree, as `fs.promises.rm`:
   * `force` makes a missing path no error.
   */
  async rm(path: string, options: { recursive?: boolean; force?: boolean; maxRetries?: number; retryDelay?: number } = {}): Promise<void> {
    checkPath(path)
    const o = optionsFor(options, 'rm')
    // the name itself, not what a trailing slash would resolve it to (a link's target)
    const bare = path.replace(/\/+$/, '') || path
    let st: Stats
    try {
      st = await this.lstat(bare)
      // 'link/' names what the link points to: as fs.rm, neither the link nor that is removed
      if (st.isSymbolicLink() && bare !== path) st = await this.stat(bare)
    } catch (e) {
      if (o.force && (e as SftpError).code === 'ENOENT') return
      throw e
    }
    if (!st.isDirectory()) {
      if (bare !== path) throw new SftpError(`ENOTDIR: rm '${path}': not a directory`, 'ENOTDIR', { status: 0, path })
      return this.unlink(path)
    }
    if (!o.recursive) throw new SftpError(`EISDIR: rm '${path}': it is a directory (use recursive)`, 'EISDIR', { status: 0, path })
    await this.rmdir(path, { recursive: true })
  }
  /**
   * Removes a directory; `recursive` removes its contents first. Links are removed, never
   * followed: `path` a link (to a directory too) removes the link alone, and `link/` (which
   * names its target) removes nothing, as fs does.
   */
  async rmdir(path: string, options: { recursive?: boolean; maxRetries?: number; retryDelay?: number } = {}): Promise<void> {
    checkPath(path)
    if (optionsFor(options, 'rmdir').recursive) {
      // as fs: what the path leads to must be a directory; a link to one is then removed alone
      if (!(await this.stat(path)).isDirectory()) throw new SftpError(`ENOTDIR: rmdir '${path}': not a directory`, 'ENOTDIR', { status: 0, path })
      const bare = path.replace(/\/+$/, '') || path
      const st = await this.lstat(bare)
      if (st.isSymbolicLink()) {
        if (bare === path) await this.unlink(path)
        return
      }
      await this.#removeContents(path)
    }
    await call(this.#n, 'rmdir', path)
  }
  /** Removes what a directory holds, depth first; a link is removed, not followed. */
  async #removeContents(dir: string): Promise<void> {
    for (const e of await this.readdir(dir, { withFileTypes: true })) {
      const p = posix.join(dir, e.name)
      if (e.isDirectory()) {
        await this.#removeContents(p)
        await call(this.#n, 'rmdir', p)
      } else await this.unlink(p)
    }
  }

  /**
   * Names in a directory (`withFileTypes` gives {@link Dirent}s with their attributes).
   * `recursive` lists the whole tree as fs does: names relative to `path` (`a/b`), or Dirents
   * named as in their own directory with that directory as `parentPath`; links are listed, not
   * followed.
   */
  readdir(path: string): Promise<string[]>
  readdir(path: string, options: { withFileTypes: true; recursive?: boolean; encoding?: 'utf8' | 'utf-8' }): Promise<Dirent[]>
  readdir(path: string, options?: { withFileTypes?: false; recursive?: boolean; encoding?: 'utf8' | 'utf-8' } | 'utf8' | 'utf-8'): Promise<string[]>
  async readdir(path: string, options: { withFileTypes?: boolean; recursive?: boolean; encoding?: 'utf8' | 'utf-8' } | 'utf8' | 'utf-8' = {}): Promise<string[] | Dirent[]> {
    const o = typeof options === 'string' ? { encoding: options } : optionsFor(options, 'readdir')
    // names are strings: fs's 'buffer' (or another encoding) has no meaning here
    if (o.encoding !== undefined && o.encoding !== null && !['utf8', 'utf-8'].includes(String(o.encoding).toLowerCase())) {
      throw new ConfigError(`encoding: readdir gives names as UTF-8 strings, got ${JSON.stringify(o.encoding)}`, { option: 'encoding' })
    }
    for (const k of ['withFileTypes', 'recursive'] as const) {
      if (o[k] !== undefined && o[k] !== null && typeof o[k] !== 'boolean') throw new ConfigError(`${k}: must be a boolean`, { option: k })
    }
    const withFileTypes = o.withFileTypes
    checkPath(path)
    const entries = (await call(this.#n, 'readdir', path)).map((e) => new Dirent(e, path))
    if (o.recursive) {
      // breadth first, as fs lists a tree: each directory's entries, then those of the
      // directories in it; the listing's attributes are lstat's, so a link is not entered
      const names = entries.map((e) => e.name)
      for (let i = 0; i < entries.length; i++) {
        if (!entries[i].isDirectory()) continue
        const dir = posix.join(entries[i].parentPath, entries[i].name)
        for (const e of await call(this.#n, 'readdir', dir)) {
          entries.push(new Dirent(e, dir))
          names.push(`${names[i]}/${e.name}`)
        }
      }
      return withFileTypes ? entries : names
    }
    return withFileTypes ? entries : entries.map((e) => e.name)
  }
  /** Streams a directory batch by batch: for huge directories. */
  async *opendir(path: string): AsyncGenerator<Dirent> {
    const n = this.#n
    const handle = await call(n, 'opendir', checkPath(path))
    try {
      for (;;) {
        const batch = await call(n, 'readdirBatch', handle, path)
        if (!batch) return
        for (const e of batch) yield new Dirent(e, path)
      }
    } finally {
      await call(n, 'closeHandle', handle).catch(() => {})
    }
  }

  /** Opens a file (`flags` as fs: r, r+, w, wx, w+, a, ax, a+). */
  async open(path: string, openFlags: string | number = 'r', mode?: number | string): Promise<FileHandle> {
    const flags = flagsOf(openFlags, 'flags') ?? 'r'
    const h = await call(this.#n, 'openFile', checkPath(path), flags, modeOf(mode))
    if (!flags.startsWith('a')) return new FileHandle(this.#n, h, 0, undefined, flags)
    // append: writes go to the end; 'a+' reads from the start, as fs reads an 'a+' file
    const size = Number((await call(this.#n, 'fstat', h).catch(async (e: unknown) => {
      await call(this.#n, 'closeHandle', h).catch(() => {})
      throw e
    })).size ?? 0)
    return new FileHandle(this.#n, h, flags.includes('+') ? 0 : size, size, flags)
  }
  /** A whole file; `encoding` gives a string. */
  readFile(path: string): Promise<Buffer>
  readFile(path: string, options: { encoding: BufferEncoding; maxSize?: number; signal?: AbortSignal } | BufferEncoding): Promise<string>
  readFile(path: string, options?: { encoding?: null; maxSize?: number; signal?: AbortSignal }): Promise<Buffer>
  /** A whole file; `encoding` gives a string; `signal` aborts the reads (the handle is closed). */
  async readFile(path: string, options: { encoding?: BufferEncoding | null; flag?: string | number; maxSize?: number; signal?: AbortSignal } | BufferEncoding = {}): Promise<Buffer | string> {
    const o = typeof options === 'string' ? { encoding: options } : optionsFor(options, 'readFile')
    // fs's default flag, 'r', is the one this reads with: another would be silently ignored
    if ('flag' in o && o.flag !== undefined && flagsOf(o.flag, 'flag') !== 'r') throw new ConfigError(`flag: readFile reads with 'r' only, got ${JSON.stringify(o.flag)}`, { option: 'flag' })
    const encoding = encodingOf(o.encoding)
    const max = intOf(o.maxSize, 'maxSize', 0)
    checkPath(path)
    const data = await withSignal(o.signal, (cancel) => call(this.#n, 'readFile', path, max, cancel))
    return encoding ? data.toString(encoding) : data
  }
  /**
   * Writes a whole file (replacing it, or as `flag` says). `signal` stops the writes: as with
   * fs, the file may then hold part of `data`.
   */
  async writeFile(path: string, data: string | NodeJS.ArrayBufferView, options: { flag?: string | number; mode?: number; encoding?: BufferEncoding; signal?: AbortSignal } | BufferEncoding = {}): Promise<void> {
    checkPath(path)
    const o = typeof options === 'string' ? { encoding: options } : optionsFor(options, 'writeFile')
    const buf = bytesOf(data, encodingOf(o.encoding))
    const flags = flagsOf(o.flag, 'flag') ?? 'w'
    // 'r' (the one valid flag that does not open for writing): the write could only fail,
    // with a misleading "no such file" from the server (a read-only descriptor is EBADF to fs)
    if (flags === 'r') throw new SftpError(`EBADF: write '${path}': flag '${flags}' does not open the file for writing`, 'EBADF', { status: 0, path })
    const mode = modeOf(o.mode)
    await withSignal(o.signal, (cancel) => call(this.#n, 'writeFile', path, buf, flags, mode, cancel))
  }
  /** Appends to a file, creating it if needed (`flag` as fs, default 'a'). */
  async appendFile(path: string, data: string | NodeJS.ArrayBufferView, options: { flag?: string | number; mode?: number; encoding?: BufferEncoding; signal?: AbortSignal } | BufferEncoding = {}): Promise<void> {
    const o = typeof options === 'string' ? { encoding: options } : optionsFor(options, 'appendFile')
    await this.writeFile(path, data, { flag: ('flag' in o ? o.flag : undefined) ?? 'a', mode: o.mode, encoding: o.encoding, signal: o.signal })
  }

  /**
   * A Readable of a remote file with many reads in flight (read-ahead), delivered in order.
   * `end` is inclusive, as in fs.
   */
  createReadStream(path: string, streamOptions: SftpReadStreamOptions | BufferEncoding = {}): Readable {
    checkPath(path)
    // as fs: a string is the encoding
    const options = typeof streamOptions === 'string' ? { encoding: streamOptions } : optionsFor(streamOptions, 'createReadStream')
    const highWaterMark = intOf(options.highWaterMark, 'highWaterMark', 1)
    const concurrency = intOf(options.concurrency, 'concurrency', 1, 256)
    const start = options.start ?? 0
    // offsets past 2^53 are not exact in a number (fs refuses them too)
    if (!Number.isSafeInteger(start) || start < 0) throw new ConfigError('start: must be a non-negative integer up to Number.MAX_SAFE_INTEGER', { option: 'start' })
    // as fs: Infinity reads to the end
    const last = options.end === Infinity ? undefined : options.end
    if (last !== undefined && (!Number.isSafeInteger(last) || last < start)) throw new ConfigError('end: must be an integer ≥ start, up to Number.MAX_SAFE_INTEGER', { option: 'end' })
    const end = last === undefined ? undefined : last + 1
    const encoding = encodingOf(options.encoding)
    const signal = streamSignalOf(options.signal)
    let reader: InstanceType<typeof binding.NativeBufferReader> | undefined
    const stream = new Readable({
      highWaterMark: highWaterMark ?? 1024 * 1024,
      read() { source.pump() },
      destroy(err, cb) {
        reader?.close()
        cb(err)
      },
    })
    stream.on('error', () => {})
    destroyOnAbort(stream, signal)
    const source = new ChannelSource(0, (c) => stream.push(c), (e) => stream.destroy(e))
    if (encoding) stream.setEncoding(encoding)
    call(this.#n, 'readStream', path, start, end, concurrency, highWaterMark).then((r) => {
      reader = r
      if (stream.destroyed) return r.close()
      r.setWaker(() => source.wake())
      source.attach(r as never)
      // as fs streams say once the file is open
      stream.emit('open')
      stream.emit('ready')
    }, (e) => stream.destroy(e))
    return stream
  }

  /** A Writable to a remote file with many writes in flight (write-behind); `finish` after every write landed. */
  createWriteStream(path: string, streamOptions: SftpWriteStreamOptions | BufferEncoding = {}): SftpWriteStream {
    checkPath(path)
    const o: SftpWriteStreamOptions = typeof streamOptions === 'string' ? { encoding: streamOptions } : optionsFor(streamOptions, 'createWriteStream')
    const flags = flagsOf(o.flags, 'flags') ?? 'w'
    if (flags === 'r') throw new SftpError(`EBADF: write '${path}': flag '${flags}' does not open the file for writing`, 'EBADF', { status: 0, path })
    const defaultEncoding = encodingOf(o.encoding) ?? 'utf8'
    const signal = streamSignalOf(o.signal)
    const writer = call(this.#n, 'writeStream', path, flags, intOf(o.start, 'start', 0), modeOf(o.mode), intOf(o.concurrency, 'concurrency', 1, 256))
    let opened: { confirmed(): number } | undefined
    writer.then((x) => { opened = x }, () => {})
    const w = new Writable({
      highWaterMark: 1024 * 1024,
      defaultEncoding,
      write(chunk: Buffer, _enc, cb) {
        // a write settles once queued: the next one is handed over while it is in flight
        writer.then((x) => call(x, 'write', chunk)).then(() => cb(), (e) => cb(e))
      },
      final(cb) {
        writer.then((x) => call(x, 'close')).then(() => cb(), (e) => cb(e))
      },
      destroy(err, cb) {
        writer.then((x) => call(x, 'close'), () => {}).catch(() => {}).finally(() => cb(err))
      },
    }) as SftpWriteStream
    // what the server confirmed, from `start` without a gap: after a failure, a resume at
    // `start + bytesWritten` leaves no hole (bytes still in flight are not counted)
    Object.defineProperty(w, 'bytesWritten', { get: () => opened?.confirmed() ?? 0, enumerable: true })
    w.on('error', () => {})
    destroyOnAbort(w, signal)
    // as fs.createWriteStream: 'open' and 'ready' once the file is open, and a file that
    // cannot be opened is an 'error' at once
    writer.then(() => {
      if (w.destroyed) return
      w.emit('open')
      w.emit('ready')
    }, (e: Error) => w.destroy(e))
    return w
  }

  /**
   * Remote file → local file, natively (the bytes never enter JavaScript). Written under a
   * temporary name and renamed when complete and of the expected size.
   */
  async download(remote: string, local: string, transfer: TransferOptions = {}): Promise<number> {
    return this.#download(remote, local, optionsFor(transfer, 'download'), false)
  }
  async #download(remote: string, local: string, transfer: TransferOptions, replaceLinks: boolean): Promise<number> {
    const options = optionsOf(transfer)
    const onProgress = callbackOf(options.onProgress, 'onProgress')
    const progress = onProgress ? (transferred: number, total: number) => { try { onProgress({ transferred, total }) } catch { /* a throwing callback must not stop the transfer */ } } : undefined
    return withSignal(options.signal, (cancel) => call(this.#n, 'download', checkPath(remote, 'remote'), checkPath(local, 'local'), { ...transferOptions(options), replaceLinks }, progress, cancel))
  }
  /** Local file → remote file, natively; written under a temporary name and renamed when complete. */
  async upload(local: string, remote: string, transfer: TransferOptions = {}): Promise<number> {
    return this.#upload(local, remote, optionsFor(transfer, 'upload'), false)
  }
  async #upload(local: string, remote: string, transfer: TransferOptions, replaceLinks: boolean): Promise<number> {
    const options = optionsOf(transfer)
    const onProgress = callbackOf(options.onProgress, 'onProgress')
    const progress = onProgress ? (transferred: number, total: number) => { try { onProgress({ transferred, total }) } catch { /* ignored */ } } : undefined
    return withSignal(options.signal, (cancel) => call(this.#n, 'upload', checkPath(local, 'local'), checkPath(remote, 'remote'), { ...transferOptions(options), replaceLinks }, progress, cancel))
  }

  /** A remote directory tree → local, several files at once. Resolves with the files copied. */
  async downloadDir(remote: string, local: string, dirOptions: DirTransferOptions = {}): Promise<number> {
    const options = checkDirOptions(optionsFor(dirOptions, 'downloadDir'))
    const files: { from: string; to: string; size: number }[] = []
    // the real paths of the directories being walked, root first: a followed link back into
    // one of them would never end
    // directories are made with the remote one's permission bits (and the umask), owner
    // rwx added, as OpenSSH's sftp get -r makes them: a private directory stays private
    const walk = async (dir: string, rel: string, above: string[], mode: number): Promise<void> => {
      await mkdirLocal(join(local, rel), { recursive: true, mode: (mode & 0o7777) | 0o700 })
      // one name once: a listing that repeats one (as a link, then as a file) would have the
      // file follow the link; where names fold case, so must this
      const seen = new Set<string>()
      const fold = process.platform === 'darwin' || process.platform === 'win32'
      for (const e of await this.readdir(dir, { withFileTypes: true })) {
        // a name is one path component: a server listing '../x' or 'a/b' must not place a
        // file outside `local` (OpenSSH's sftp refuses such names too)
        if (!e.name || e.name === '.' || e.name === '..' || /[/\0]/.test(e.name) || (sep === '\\' && e.name.includes('\\'))) {
          throw new SftpError(`EBADMSG: the server listed the name ${JSON.stringify(e.name)} in '${dir}', which is not a plain file name`, 'EBADMSG', { status: 0, path: posix.join(dir, e.name) })
        }
        const key = fold ? e.name.toLowerCase() : e.name
        if (seen.has(key)) throw new SftpError(`EBADMSG: the server listed the name ${JSON.stringify(e.name)} in '${dir}' twice`, 'EBADMSG', { status: 0, path: posix.join(dir, e.name) })
        seen.add(key)
        const r = rel ? `${rel}/${e.name}` : e.name
        const from = posix.join(dir, e.name)
        let st = e.stats
        if (e.isSymbolicLink()) {
          const how = options.symlinks ?? 'skip'
          if (how === 'skip') continue
          if (how === 'preserve') {
            if (options.filter && !options.filter(r, false)) continue
            const target = await this.readlink(from)
            const at = join(local, r)
            await symlinkLocal(target, at).catch(async (e: NodeJS.ErrnoException) => {
              // an earlier copy's link is replaced, as files are; anything else fails the transfer
              if (e.code !== 'EEXIST' || !(await lstatLocal(at)).isSymbolicLink()) throw e
              await unlinkLocal(at)
              await symlinkLocal(target, at)
            })
            continue
          }
          st = await this.stat(from).catch(() => st)
        }
        if (options.filter && !options.filter(r, st.isDirectory())) continue
        if (st.isDirectory()) {
          const real = e.isSymbolicLink() ? await this.realpath(from) : posix.join(above[above.length - 1], e.name)
          if (above.includes(real)) throw loop(from, real)
          await walk(from, r, [...above, real], st.mode)
        } else if (st.isFile()) files.push({ from, to: join(local, r), size: Number(st.size) })
      }
    }
    const root = checkPath(remote, 'remote')
    const rootStat = await this.stat(root)
    if (!rootStat.isDirectory()) throw new SftpError(`ENOTDIR: '${root}' is not a directory (use download)`, 'ENOTDIR', { status: 0, path: root })
    await walk(root, '', [await this.realpath(root)], rootStat.mode)
    // a link the walk made from the listing is replaced, never written through
    return this.#copyMany(files, options, false, (f, o) => this.#download(f.from, f.to, o, true))
  }

  /** A local directory tree → remote, several files at once. Resolves with the files copied. */
  async uploadDir(local: string, remote: string, dirOptions: DirTransferOptions = {}): Promise<number> {
    const options = checkDirOptions(optionsFor(dirOptions, 'uploadDir'))
    const files: { from: string; to: string; size: number }[] = []
    // directories are made with the local one's permission bits, as files are
    const walk = async (dir: string, rel: string, above: string[], mode: number): Promise<void> => {
      // (Windows reports no execute bits: its directories get the server's default, as its files 0644)
      await this.mkdir(rel ? posix.join(remote, rel) : remote, { recursive: true, mode: process.platform === 'win32' ? undefined : (mode & 0o7777) | 0o700 })
      for (const e of await readdirLocal(dir, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name
        const from = join(dir, e.name)
        let isDir = e.isDirectory()
        let isFile = e.isFile()
        if (e.isSymbolicLink()) {
          const how = options.symlinks ?? 'skip'
          if (how === 'skip') continue
          if (how === 'preserve') {
            if (options.filter && !options.filter(r, false)) continue
            const target = await readlinkLocal(from)
            const at = posix.join(remote, r)
            await this.symlink(target, at).catch(async (e: SftpError) => {
              if (!(await this.lstat(at).then((s) => s.isSymbolicLink(), () => false))) throw e
              await this.unlink(at)
              await this.symlink(target, at)
            })
            continue
          }
          const st = await statLocal(from).catch(() => undefined)
          if (!st) continue
          isDir = st.isDirectory()
          isFile = st.isFile()
        }
        if (options.filter && !options.filter(r, isDir)) continue
        if (isDir) {
          const real = e.isSymbolicLink() ? await realpathLocal(from) : join(above[above.length - 1], e.name)
          if (above.includes(real)) throw loop(from, real)
          await walk(from, r, [...above, real], (await statLocal(from)).mode)
          // a followed link counts as the file it names (its own length is that of its target's name)
        } else if (isFile) files.push({ from, to: posix.join(remote, r), size: (await statLocal(from)).size })
      }
    }
    const root = checkPath(local, 'local')
    // a local file is refused before anything is made on the server
    const rootStat = await statLocal(root)
    if (!rootStat.isDirectory()) throw new SftpError(`ENOTDIR: '${root}' is not a directory (use upload)`, 'ENOTDIR', { status: 0, path: root })
    await walk(root, '', [await realpathLocal(root)], rootStat.mode)
    return this.#copyMany(files, options, true, (f, o) => this.#upload(f.from, f.to, o, true))
  }

  async #copyMany(files: { from: string; to: string; size: number }[], options: DirTransferOptions, remote: boolean, one: (f: { from: string; to: string }, o: TransferOptions) => Promise<number>): Promise<number> {
    // each file counts as listed until it turns out larger (it grew after the listing): then
    // the total grows with it, so `transferred` never passes `total`; each file's count only
    // rises, and once copied the file counts as the bytes its transfer copied (one that
    // shrank takes its difference off the total), so the last report has both equal
    let total = files.reduce((a, f) => a + f.size, 0)
    const jobs = partialChains(files, remote)
    const done = new Map<string, number>()
    const expected = new Map<string, number>(files.map((f) => [f.to, f.size]))
    let transferred = 0
    let finished = 0
    const count = (to: string, n: number): void => {
      const was = done.get(to) ?? 0
      if (n <= was) return
      done.set(to, n)
      transferred += n - was
      const listed = expected.get(to) ?? 0
      if (n > listed) {
        total += n - listed
        expected.set(to, n)
      }
    }
    const report = (): void => {
      if (!options.onProgress) return
      try { options.onProgress({ transferred, total, files: finished, filesTotal: files.length }) } catch { /* ignored */ }
    }
    const queue = [...jobs]
    // the first failure stops the rest: no new file starts, the ones under way are aborted,
    // and the call settles only once every transfer has (none goes on after it rejected)
    const stop = new AbortController()
    // every file under way listens on it (up to 64 at once): no leak warning past Node's 10
    setMaxListeners(Infinity, stop.signal)
    const user = options.signal
    const onAbort = (): void => stop.abort(user?.reason)
    if (user?.aborted) onAbort()
    else user?.addEventListener('abort', onAbort, { once: true })
    let failure: { err: unknown } | undefined
    const workers = Array.from({ length: Math.max(1, Math.min(options.fileConcurrency ?? 4, 64)) }, async () => {
      for (let job = queue.shift(); job && !failure; job = queue.shift()) {
        for (const { file, resume } of job) {
          if (failure) return
          try {
            const n = await one(file, { ...options, resume, signal: stop.signal, onProgress: (p) => { count(file.to, p.transferred); report() } })
            count(file.to, n)
            const listed = expected.get(file.to) ?? 0
            if (n < listed) total -= listed - n
            expected.set(file.to, n)
          } catch (e) {
            failure ??= { err: e }
            queue.length = 0
            stop.abort()
            return
          }
          finished++
          report()
        }
      }
    })
    try {
      await Promise.all(workers)
    } finally {
      user?.removeEventListener('abort', onAbort)
    }
    if (failure) throw failure.err
    return finished
  }

  /** Ends the SFTP session (the SSH connection stays open). */
  async close(): Promise<void> {
    this.#n.close()
  }
}

/**
 * A tree transfer's files as jobs, each run by one worker in order. A file is written under
 * its partial name first (`x` under `x.ferrossh-partial`), and a tree may hold a file of that
 * very name: then the two go in one job, `x` first, so neither transfer writes over the
 * other's file; and `x` does not resume from what is that other file's content.
 */
function partialChains<F extends { to: string }>(files: F[], remote: boolean): { file: F; resume?: boolean }[][] {
  const byDest = new Map(files.map((f) => [f.to, f]))
  const partialOf = new Map(files.map((f) => [f, binding.sftpPartialPath(f.to, remote)]))
  const isPartialOfAnother = new Set<F>()
  for (const f of files) {
    const next = byDest.get(partialOf.get(f) ?? '')
    if (next && next !== f) isPartialOfAnother.add(next)
  }
  const jobs: { file: F; resume?: boolean }[][] = []
  const placed = new Set<F>()
  for (const head of files) {
    if (placed.has(head) || isPartialOfAnother.has(head)) continue
    const job: { file: F; resume?: boolean }[] = []
    for (let f: F | undefined = head; f && !placed.has(f); f = byDest.get(partialOf.get(f) ?? '')) {
      placed.add(f)
      const next = byDest.get(partialOf.get(f) ?? '')
      job.push(next && next !== f ? { file: f, resume: false } : { file: f })
    }
    jobs.push(job)
  }
  // a cycle cannot arise (each partial name is longer, or a hash of a name too long to
  // lengthen), but no file is ever left out
  for (const f of files) if (!placed.has(f)) jobs.push([{ file: f }])
  return jobs
}

/** Checks a tree transfer's options (and the per-file ones) before anything is walked or created. */
function checkDirOptions(d: DirTransferOptions | null | undefined): DirTransferOptions {
  const o = optionsOf(d)
  if (o.symlinks !== undefined && !['skip', 'follow', 'preserve'].includes(o.symlinks)) {
    throw new ConfigError(`symlinks: must be 'skip', 'follow' or 'preserve', got ${JSON.stringify(o.symlinks)}`, { option: 'symlinks' })
  }
  callbackOf(o.filter, 'filter')
  callbackOf(o.onProgress, 'onProgress')
  intOf(o.fileConcurrency, 'fileConcurrency', 1)
  transferOptions({ ...o, onProgress: undefined })
  return o
}

function transferOptions(o: TransferOptions): { concurrency?: number; chunkSize?: number; resume?: boolean; keepPartial?: boolean; mode?: number; fsync?: boolean } {
  for (const name of ['resume', 'keepPartial', 'fsync'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'boolean') throw new ConfigError(`${name}: must be a boolean`, { option: name })
  }
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1 || o.concurrency > 256)) throw new ConfigError('concurrency: must be between 1 and 256', { option: 'concurrency' })
  if (o.chunkSize !== undefined && (!Number.isInteger(o.chunkSize) || o.chunkSize < 1)) throw new ConfigError('chunkSize: must be a positive integer', { option: 'chunkSize' })
  // the server's limit (256 KiB at most) clamps it anyway; past 2^32 it would wrap natively
  const chunkSize = o.chunkSize === undefined ? undefined : Math.min(o.chunkSize, 0xffffffff)
  return { concurrency: o.concurrency, chunkSize, resume: o.resume, keepPartial: o.keepPartial, mode: modeOf(o.mode), fsync: o.fsync }
}

