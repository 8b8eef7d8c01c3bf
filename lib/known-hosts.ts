import { open } from 'node:fs/promises'
import { closeSync, openSync, readSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

import { ConfigError, fromNative } from './errors'
import binding from './native'
import { expandHome } from './paths'

/** One known_hosts line that matches a host. */
export interface KnownHostsEntry {
  /** `''`, `'cert-authority'` or `'revoked'` */
  marker: '' | 'cert-authority' | 'revoked'
  /** The key type the key itself names, e.g. `ssh-ed25519` (`ssh-rsa` for any RSA key). */
  keyType: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it */
  fingerprint: string
  /** `type base64` */
  publicKey: string
  /** The file the line is in; null for text given to {@link KnownHosts.parse} without a name. */
  file: string | null
  /** The line number (1-based). */
  line: number
  /** The host field is hashed (`|1|salt|hash`, as `HashKnownHosts` writes). */
  hashed: boolean
  /** The host patterns as written; null for a hashed line. */
  hosts: string | null
  /** Text after the key on the line, or null. */
  comment: string | null
}

/** A line that could not be used (the rest of the file still is). */
export interface KnownHostsIssue {
  /** The file the line is in; null for text given without a name. */
  file: string | null
  /** The line number (1-based). */
  line: number
  /** What is wrong with the line. */
  message: string
}

/** What the files say about a host's key. */
export interface KnownHostsCheck {
  /** `match`, `changed` (another key is known for the host), `unknown` or `revoked`. */
  status: 'match' | 'changed' | 'unknown' | 'revoked'
  /** File of the matching or `@revoked` line; null otherwise. */
  file: string | null
  /** Line number (1-based) of the matching or `@revoked` line; null otherwise. */
  line: number | null
  /** The keys known for the host when the status is `changed`. */
  expected: {
    /** The known key's type, e.g. `ssh-ed25519`. */
    keyType: string
    /** The known key's `SHA256:…` fingerprint. */
    fingerprint: string
    /** The file of its line; null for text given without a name. */
    file: string | null
    /** Its line number (1-based). */
    line: number
  }[]
}

/** The files ssh reads by default: `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`. */
export function defaultKnownHostsFiles(): string[] {
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts']
}

/** The files argument of load()/loadSync(): one path or a list of them, resolved. */
function fileList(files: string | string[]): string[] {
  const list: unknown[] = typeof files === 'string' ? [files] : Array.isArray(files) ? files : [files]
  return list.map((f) => {
    if (typeof f !== 'string' || !f) throw new ConfigError(`known_hosts files: each must be a non-empty path string, got ${f === null ? 'null' : typeof f}`, { option: 'knownHosts' })
    return resolve(expandHome(f))
  })
}

function checkHost(host: unknown): string {
  if (typeof host !== 'string' || !host) throw new ConfigError('host: must be a non-empty string', { option: 'host' })
  return host
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string') throw new ConfigError('key: must be a public key string such as "ssh-ed25519 AAAA…"', { option: 'key' })
  return key
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('port: must be between 1 and 65535', { option: 'port' })
  return port
}

/** Past this a "known_hosts file" is something else (`/dev/zero`, a disk image): refused. */
const FILE_LIMIT = 64 * 1024 * 1024
const READ_CHUNK = 256 * 1024

function tooLong(path: string): ConfigError {
  return new ConfigError(`cannot read known_hosts file ${path}: longer than ${FILE_LIMIT} bytes, far more than such a file holds`, { option: 'knownHosts', file: path })
}

async function readKnownHostsFile(path: string): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const parts: Buffer[] = []
    let total = 0
    for (;;) {
      const { bytesRead, buffer } = await fh.read(Buffer.allocUnsafe(READ_CHUNK), 0, READ_CHUNK, null)
      if (bytesRead === 0) break
      total += bytesRead
      if (total > FILE_LIMIT) throw tooLong(path)
      parts.push(buffer.subarray(0, bytesRead))
    }
    return Buffer.concat(parts, total).toString('utf8')
  } finally {
    await fh.close()
  }
}

function readKnownHostsFileSync(path: string): string {
  const fd = openSync(path, 'r')
  try {
    const parts: Buffer[] = []
    let total = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(READ_CHUNK)
      const n = readSync(fd, buf, 0, READ_CHUNK, null)
      if (n === 0) break
      total += n
      if (total > FILE_LIMIT) throw tooLong(path)
      parts.push(buf.subarray(0, n))
    }
    return Buffer.concat(parts, total).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/**
 * OpenSSH known_hosts files, parsed and matched exactly as ssh does: plain and hashed
 * names, `[host]:port`, `*`/`?` wildcards, `!` negation, `@revoked`, `@cert-authority`.
 * @example
 * const kh = await KnownHosts.load()
 * kh.check('github.com', 22, 'ssh-ed25519 AAAA…').status // 'match'
 */
export class KnownHosts {
  readonly #native: InstanceType<typeof binding.NativeKnownHosts>

  private constructor(sources: { path?: string; text: string }[]) {
    this.#native = new binding.NativeKnownHosts(sources)
  }

  /** Reads files (default: ssh's); a missing file counts as empty. */
  static async load(files: string | string[] = defaultKnownHostsFiles()): Promise<KnownHosts> {
    const list = fileList(files)
    const sources = await Promise.all(list.map(async (path) => ({ path, text: await readKnownHostsFile(path).catch((e: NodeJS.ErrnoException) => {
      if (e instanceof ConfigError) throw e
      if (e.code === 'ENOENT') return ''
      throw new ConfigError(`cannot read known_hosts file ${path}: ${e.message}`, { option: 'knownHosts', file: path })
    }) })))
    return new KnownHosts(sources)
  }

  /** The same as {@link KnownHosts.load}, synchronously. */
  static loadSync(files: string | string[] = defaultKnownHostsFiles()): KnownHosts {
    const list = fileList(files)
    return new KnownHosts(list.map((path) => {
      try {
        return { path, text: readKnownHostsFileSync(path) }
      } catch (e) {
        if (e instanceof ConfigError) throw e
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, text: '' }
        throw new ConfigError(`cannot read known_hosts file ${path}: ${(e as Error).message}`, { option: 'knownHosts', file: path })
      }
    }))
  }

  /** Parses known_hosts text. */
  static parse(text: string, file?: string): KnownHosts {
    if (typeof text !== 'string') throw new ConfigError('known_hosts text must be a string', { option: 'knownHosts' })
    if (file !== undefined && file !== null && typeof file !== 'string') throw new ConfigError('the known_hosts file name must be a string', { option: 'knownHosts' })
    return new KnownHosts([{ path: file ?? undefined, text }])
  }

  /** Lines that could not be used, with file and line. */
  get issues(): KnownHostsIssue[] {
    return this.#native.issues().map((i) => ({ file: i.file ?? null, line: i.line, message: i.message }))
  }

  /** Every line whose host field matches `host` (and `port`, default 22). */
  lookup(host: string, port = 22): KnownHostsEntry[] {
    try {
      return this.#native.lookup(checkHost(host), checkPort(port)).map((e) => ({ ...e, marker: e.marker as KnownHostsEntry['marker'], file: e.file ?? null, hosts: e.hosts ?? null, comment: e.comment ?? null }))
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Checks a host key (`type base64`) the way ssh's StrictHostKeyChecking does. */
  check(host: string, port: number, key: string): KnownHostsCheck {
    try {
      const r = this.#native.check(checkHost(host), checkPort(port), checkKey(key))
      return { status: r.status as KnownHostsCheck['status'], file: r.file ?? null, line: r.line ?? null, expected: r.expected.map((e) => ({ ...e, file: e.file ?? null })) }
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Key types known for a host, in file order (ssh negotiates these first). */
  knownKeyTypes(host: string, port = 22): string[] {
    return this.#native.knownKeyTypes(checkHost(host), checkPort(port))
  }

  /** A known_hosts line for `key`, hashed like `ssh-keygen -H` when `hash` is set. */
  static formatLine(host: string, port: number, key: string, options: { hash?: boolean } = {}): string {
    if (options === null) options = {}
    if (typeof options !== 'object') throw new ConfigError('options: must be an object { hash }', { option: 'options' })
    for (const k of Object.keys(options)) {
      if (k !== 'hash') throw new ConfigError(`unknown option '${k}' (known: hash)`, { option: k })
    }
    // 'false' is no false: a line hashed or not by a string's truthiness would be a surprise
    if (options.hash !== undefined && options.hash !== null && typeof options.hash !== 'boolean') throw new ConfigError('hash: must be true or false', { option: 'hash' })
    try {
      return binding.knownHostsLine(checkHost(host), checkPort(port), checkKey(key), Boolean(options.hash))
    } catch (e) {
      throw fromNative(e)
    }
  }

  /** Appends a host key to a file under a lock (safe against concurrent writers). */
  static add(file: string, host: string, port: number, key: string, options: { hash?: boolean } = {}): void {
    if (typeof file !== 'string' || !file) throw new ConfigError('file: must be a non-empty path string', { option: 'file' })
    const line = KnownHosts.formatLine(host, port, key, options)
    try {
      binding.knownHostsAppend(resolve(expandHome(file)), line)
    } catch (e) {
      throw fromNative(e)
    }
  }
}
