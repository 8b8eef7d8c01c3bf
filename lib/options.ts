import { existsSync } from 'node:fs'
import { homedir, userInfo } from 'node:os'
import { join, resolve } from 'node:path'

import { ConfigError } from './errors'
import { defaultKnownHostsFiles } from './known-hosts'
import { expandHome } from './paths'
import { CONFIG_AUTH, KNOWN_HOSTS_NONE, ORIGINAL_HOST, type ConfigAuth } from './config'
import type { NativeAuthMethod, NativeConnectOptions, NativeHostKeyInfo, NativePty } from './native'

/** The server's host key as shown to a `hostKey.verify` callback. */
export interface HostKeyInfo {
  /** The host name or address connected to, as given in the options. */
  host: string
  /** The server's TCP port. */
  port: number
  /** e.g. `ssh-ed25519` */
  algorithm: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it */
  fingerprint: string
  /** `type base64`, as in known_hosts */
  publicKey: string
}

/**
 * How the server's host key is checked. Strict by default: the key must be in
 * `~/.ssh/known_hosts` or `/etc/ssh/ssh_known_hosts`.
 */
export type HostKeyPolicy =
  | {
      /** known_hosts file(s) to check against (`~` expanded), like ssh's `UserKnownHostsFile`. */
      knownHosts: string | string[]
      /** Record an unknown host's key in the first file, like `StrictHostKeyChecking accept-new`; a changed key is still refused. */
      acceptNew?: boolean
      /** Write recorded lines with hashed host names, like `HashKnownHosts yes`. */
      hash?: boolean
      /**
       * The name to look the key up under (and record it under) instead of the host and port,
       * like ssh's `HostKeyAlias`: for a host reached under several names or through a tunnel
       * on a local port.
       */
      alias?: string
    }
  | {
      /** Pinned SHA256 fingerprint(s) (`SHA256:…`, as `ssh-keygen -l` prints); any other key is refused. */
      fingerprint: string | string[]
    }
  | {
      /** Decides about the key: only `true` accepts it; `false`, another value or a throw refuses it. */
      verify: (key: HostKeyInfo) => boolean | Promise<boolean>
    }
  | 'insecure-accept-any'

/** Algorithm lists: names in order, or an OpenSSH-style edit of the default (`+name`, `-name`, `^name`). */
export interface AlgorithmOptions {
  /** Key exchange algorithms, like ssh's `KexAlgorithms` (e.g. `curve25519-sha256`). */
  kex?: string | string[]
  /** Ciphers, like ssh's `Ciphers` (e.g. `chacha20-poly1305@openssh.com`). */
  cipher?: string | string[]
  /** MAC algorithms, like ssh's `MACs` (e.g. `hmac-sha2-256-etm@openssh.com`). */
  mac?: string | string[]
  /** Host key algorithms accepted from the server, like ssh's `HostKeyAlgorithms` (e.g. `ssh-ed25519`). */
  hostKey?: string | string[]
  /** Compression algorithms (e.g. `none`, `zlib@openssh.com`). */
  compression?: string | string[]
}

/** A keyboard-interactive prompt. */
export interface Prompt {
  /** The text the server shows, e.g. `Password: ` or `Verification code: `. */
  prompt: string
  /** Whether the answer may be shown as it is typed (false for secrets). */
  echo: boolean
}

/** Answers the server's keyboard-interactive prompts (one call per round). */
export type KeyboardInteractiveHandler = (
  prompts: Prompt[],
  info: { name: string; instructions: string },
) => string[] | Promise<string[]>

/** Authentication methods, as named in `authOrder`. */
export type AuthMethodName = 'publickey' | 'agent' | 'password' | 'keyboard-interactive'

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Host name, IPv4 or IPv6 address. */
  host: string
  /** Default 22. */
  port?: number
  /** Default: the local user name. */
  username?: string
  /** A private key (OpenSSH or PEM text). */
  privateKey?: string | Buffer
  /** Path of a private key file (`~` expanded), or several, tried in order. */
  privateKeyPath?: string | string[]
  /** Passphrase of an encrypted private key. */
  passphrase?: string
  /**
   * OpenSSH user certificates (`*-cert.pub` contents), one or several: each is presented with
   * the key it certifies, one of the private keys given or the agent's.
   */
  certificate?: string | Buffer | (string | Buffer)[]
  /**
   * Certificate files, one or several, paired with keys as `certificate` is; without it,
   * `<privateKeyPath>-cert.pub` is used when it exists, as ssh does.
   * @example
   * { privateKeyPath: ['~/.ssh/id_ed25519', '~/.ssh/id_work'], certificatePath: '~/.ssh/id_work-cert.pub' }
   */
  certificatePath?: string | string[]
  /** Authenticate with the keys of an SSH agent: `true` = `$SSH_AUTH_SOCK`, or the socket path. */
  agent?: boolean | string
  /** Password for `password` authentication. */
  password?: string
  /** Answers `keyboard-interactive` prompts (PAM passwords, one-time codes). */
  keyboardInteractive?: KeyboardInteractiveHandler
  /** The order methods are tried in; default publickey, agent, keyboard-interactive, password. */
  authOrder?: AuthMethodName[]
  /** How the server's host key is checked; default: strictly, against `~/.ssh/known_hosts` and `/etc/ssh/ssh_known_hosts`. */
  hostKey?: HostKeyPolicy
  /** Algorithm lists to offer: names in order, or edits of the defaults (`+name`, `-name`, `^name`) as in ssh_config. */
  algorithms?: AlgorithmOptions
  /** Milliseconds for connect + handshake + authentication (default 20000; 0 = none). */
  connectTimeout?: number
  /** Send a keepalive after this many idle milliseconds (0 = off, the default). */
  keepaliveInterval?: number
  /** Keepalives without answer before the connection is declared dead (default 3). */
  keepaliveCountMax?: number
  /** Channels open at once on this connection; further opens wait (default 10). */
  maxSessions?: number
  /** Bytes buffered per channel before the connection waits for a reader (default 4 MiB). */
  highWaterMark?: number
  /**
   * Forward the local SSH agent to every session (like `ssh -A`): `true` uses `$SSH_AUTH_SOCK`,
   * a string is the agent socket path. Per call, `agentForward` on exec/spawn/shell does the same.
   */
  agentForward?: boolean | string
  /**
   * Jump hosts, like `ssh -J`: `'user@bastion:2222,hop2'`, connect options, a connected
   * `SshClient`, or an array of them. Each hop has its host key checked under its own name;
   * hops take the target's authentication and host key options unless they give their own.
   * `'none'` connects directly, overriding an `sshConfig` file's ProxyJump or ProxyCommand, as
   * `ssh -J none` does.
   */
  proxyJump?: string | Partial<ConnectOptions> | import('./client').SshClient | (string | Partial<ConnectOptions> | import('./client').SshClient)[]
  /** A command whose stdin/stdout carry the connection (`nc %h %p`, `ssh -W %h:%p bastion`); `%h %p %r %n %%` are expanded. */
  proxyCommand?: string
  /**
   * Read OpenSSH client configuration: `true` = `~/.ssh/config` (then `/etc/ssh/ssh_config`),
   * or a file path. HostName, User, Port, IdentityFile, CertificateFile, IdentityAgent,
   * ProxyJump (hops resolved through it too), ProxyCommand, UserKnownHostsFile,
   * StrictHostKeyChecking, ServerAliveInterval, ConnectTimeout, Ciphers, … apply; options given
   * here always win.
   */
  sshConfig?: boolean | string
  /** An already connected stream to the SSH server (any Duplex: a socket, a TLS stream, a channel of your own). */
  sock?: import('node:stream').Duplex
  /** A proxy: `socks5://[user:pass@]host:port`, `socks4://…`, `socks4a://…` or `http://[user:pass@]host:port` (CONNECT). */
  proxy?: string
  /**
   * A protocol trace like `ssh -v`: `true` writes to stderr, a function receives each line.
   * Passwords, passphrases, keys and command lines never appear in it.
   */
  debug?: boolean | ((line: string) => void)
  /** Aborts connecting (TCP, handshake, authentication); {@link connect} then rejects with an AbortError. */
  signal?: AbortSignal
}

const KNOWN_OPTIONS = new Set([
  'host', 'port', 'username', 'user', 'privateKey', 'privateKeyPath', 'passphrase', 'password', 'agent', 'certificate', 'certificatePath',
  'keyboardInteractive', 'authOrder', 'hostKey', 'algorithms', 'connectTimeout', 'keepaliveInterval',
  'keepaliveCountMax', 'maxSessions', 'highWaterMark', 'signal', 'agentForward', 'debug', 'proxyJump', 'proxyCommand', 'proxy',
  'sshConfig', 'sock',
])

/** Options of the design that later versions implement: named in errors, not silently ignored. */
const NOT_YET = new Set<string>([])

function closest(name: string, known: Iterable<string> = KNOWN_OPTIONS): string | undefined {
  let best: string | undefined
  let bestScore = Infinity
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase())
    if (d < bestScore) { bestScore = d; best = k }
  }
  return bestScore <= 3 ? best : undefined
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) dp[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i][j] = Math.min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
  }
  return dp[a.length][b.length]
}

const HOST_KEY_FORMS = ['knownHosts', 'fingerprint', 'verify']

/** Refuses a key of `o` not in `known`, naming the option it belongs to (`where.key`). */
function onlyKeys(o: object, where: string, known: string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) bad(`${where}.${k}`, `unknown option (known here: ${known.join(', ')})`)
  }
}

function bad(option: string, message: string): never {
  throw new ConfigError(`${option}: ${message}`, { option })
}

function optString(o: Record<string, unknown>, key: string): string | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'string') bad(key, `must be a string, got ${typeof v}`)
  return v
}

function optNumber(o: Record<string, unknown>, key: string, min: number, max: number, integer = true): number | undefined {
  const v = o[key]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || Number.isNaN(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    bad(key, `must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}, got ${typeof v === 'number' ? v : typeof v}`)
  }
  return v
}

function algorithmList(key: string, v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean)
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[]
  bad(`algorithms.${key}`, 'must be a comma-separated string or an array of names')
}


const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa']

/** What lib/client.ts needs besides the native options. @internal */
export interface Resolved {
  native: NativeConnectOptions
  verify?: (key: NativeHostKeyInfo) => Promise<boolean>
  keyboardInteractive?: (req: { name: string; instructions: string; prompts: Prompt[] }) => Promise<string[] | null>
  signal?: AbortSignal
  debug?: (line: string) => void
  sock?: import('node:stream').Duplex
}

/** Validates user options and turns them into the native shape. @internal */
export function resolveOptions(input: ConnectOptions): Resolved {
  if (input === null || typeof input !== 'object') {
    throw new ConfigError('connect() needs an options object such as { host, username, privateKeyPath }', {})
  }
  const o = input as unknown as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (o[key] === undefined) continue
    if (NOT_YET.has(key)) bad(key, 'is not supported by this version of ferrossh yet')
    if (!KNOWN_OPTIONS.has(key)) {
      const hint = closest(key)
      throw new ConfigError(`unknown option '${key}'${hint ? `; did you mean '${hint}'?` : ''}`, { option: key })
    }
  }
  const host = optString(o, 'host')
  if (!host) bad('host', 'is required')
  const port = optNumber(o, 'port', 1, 65535) ?? 22
  const username = optString(o, 'username') ?? optString(o, 'user') ?? userInfo().username
  // both given: the other must be a name too, and the same one
  if (o.username !== undefined && o.user !== undefined) {
    const user = optString(o, 'user')
    if (user !== undefined && user !== username) bad('user', `'user' (${JSON.stringify(user)}) and 'username' (${JSON.stringify(username)}) disagree: give one`)
  }
  const passphrase = optString(o, 'passphrase')
  const password = optString(o, 'password')
  // sshd drops the connection over either: the methods after the password would never run
  if (password !== undefined) checkSecretString(password, 'password', 'the password')

  const methods: Record<AuthMethodName, NativeAuthMethod[]> = { publickey: [], agent: [], password: [], 'keyboard-interactive': [] }
  const certificates: Buffer[] = []
  if (o.certificate !== undefined && o.certificate !== null) {
    const list = Array.isArray(o.certificate) ? o.certificate : [o.certificate]
    if (list.length === 0 || !list.every((c) => typeof c === 'string' || Buffer.isBuffer(c))) bad('certificate', 'must be a string or a Buffer, or an array of them')
    for (const c of list as (string | Buffer)[]) certificates.push(Buffer.from(c))
  }
  const certificatePaths: string[] = []
  if (o.certificatePath !== undefined && o.certificatePath !== null) {
    const list = Array.isArray(o.certificatePath) ? o.certificatePath : [o.certificatePath]
    if (list.length === 0 || !list.every((p) => typeof p === 'string' && p.length > 0)) bad('certificatePath', 'must be a path or a non-empty array of paths')
    for (const p of list as string[]) {
      const path = resolve(expandHome(p))
      if (!existsSync(path)) throw new ConfigError(`certificatePath: no such file ${path}`, { option: 'certificatePath', file: path })
      certificatePaths.push(path)
    }
  }
  const givenCerts = certificates.length > 0 || certificatePaths.length > 0
  // identity and certificate files found in ssh_config, not given: one that cannot be loaded is skipped, as ssh skips it
  const found = (o as Record<symbol, unknown>)[CONFIG_AUTH] as ConfigAuth | undefined
  const isFound = (path: string): boolean => found !== undefined && found.identities.includes(path)
  const configCerts = found?.certificates ?? []
  const cert = { certificates, certificatePaths, foundCertificatePaths: configCerts }
  if (o.privateKey !== undefined) {
    const k = o.privateKey
    if (typeof k !== 'string' && !Buffer.isBuffer(k)) bad('privateKey', 'must be a string or a Buffer')
    methods.publickey.push({ kind: 'publickey', privateKey: Buffer.from(k), passphrase, ...cert })
  }
  const keyPaths = o.privateKeyPath
  if (keyPaths !== undefined && keyPaths !== null) {
    const list = typeof keyPaths === 'string' ? [keyPaths] : keyPaths
    if (!Array.isArray(list) || list.length === 0 || !list.every((p) => typeof p === 'string' && p.length > 0)) bad('privateKeyPath', 'must be a path or a non-empty array of paths')
    for (const keyPath of list as string[]) {
      const path = resolve(expandHome(keyPath))
      if (!existsSync(path)) throw new ConfigError(`privateKeyPath: no such file ${path}`, { option: 'privateKeyPath', file: path })
      // like ssh: a certificate beside the key is used with it
      const beside = givenCerts || !existsSync(`${path}-cert.pub`) ? [] : [`${path}-cert.pub`]
      methods.publickey.push({ kind: 'publickey', privateKeyPath: path, passphrase, ...cert, foundCertificatePaths: [...beside, ...configCerts], ...(isFound(path) ? { optional: true } : {}) })
    }
  }
  const agent = o.agent
  if (agent !== undefined && agent !== false) {
    if (agent !== true && (typeof agent !== 'string' || agent.length === 0)) bad('agent', 'must be true (SSH_AUTH_SOCK) or the agent socket path')
    const socket = agent === true ? process.env.SSH_AUTH_SOCK : resolve(expandHome(agent as string))
    if (!socket) bad('agent', 'is true but SSH_AUTH_SOCK is not set: start ssh-agent or pass the socket path')
    // a certificate no private key here fits is presented with the agent's key for it
    methods.agent.push({ kind: 'agent', agentSocket: socket, ...cert, ...(found?.identitiesOnly ? { identitiesOnly: true } : {}) })
  }
  if (methods.publickey.length === 0 && methods.agent.length === 0 && givenCerts) {
    bad('certificate', 'needs the private key (privateKey, privateKeyPath) or an agent holding it')
  }
  if (password !== undefined) methods.password.push({ kind: 'password', password })
  let keyboardInteractive: Resolved['keyboardInteractive']
  if (o.keyboardInteractive !== undefined) {
    const fn = o.keyboardInteractive
    if (typeof fn !== 'function') bad('keyboardInteractive', 'must be a function (prompts, info) => answers')
    keyboardInteractive = async (req) => {
      try {
        const answers = await (fn as KeyboardInteractiveHandler)(req.prompts, { name: req.name, instructions: req.instructions })
        // an answer that is no string is no answer: the round is cancelled rather than the
        // text "null" or "undefined" sent as a credential; so is one answer too many or too
        // few, or one the server would drop the connection over
        const fits = (a: unknown): boolean => typeof a === 'string' && !a.includes('\0') && Buffer.byteLength(a) <= MAX_REQUEST_STRING
        return Array.isArray(answers) && answers.length === req.prompts.length && answers.every(fits) ? answers : null
      } catch {
        return null
      }
    }
    methods['keyboard-interactive'].push({ kind: 'keyboard-interactive' })
  }
  const explicit = Object.values(methods).some((m) => m.length > 0)
  // with sshConfig, the file chose the methods, even none at all
  if (!explicit && found === undefined) {
    // like ssh: the agent when one runs, then the default identity files that exist (one
    // that is encrypted or cannot be loaded is skipped and reported)
    if (process.env.SSH_AUTH_SOCK) methods.agent.push({ kind: 'agent', agentSocket: process.env.SSH_AUTH_SOCK })
    for (const name of DEFAULT_IDENTITIES) {
      const p = join(homedir(), '.ssh', name)
      if (existsSync(p)) methods.publickey.push({ kind: 'publickey', privateKeyPath: p, passphrase, optional: true, ...(existsSync(`${p}-cert.pub`) ? { foundCertificatePaths: [`${p}-cert.pub`] } : {}) })
    }
  }
  let order: AuthMethodName[] = ['publickey', 'agent', 'keyboard-interactive', 'password']
  if (o.authOrder !== undefined) {
    const a = o.authOrder
    if (!Array.isArray(a) || !a.every((m) => typeof m === 'string')) bad('authOrder', 'must be an array of method names')
    for (const m of a as string[]) {
      if (!(m in methods)) bad('authOrder', `unknown method '${m}' (use publickey, agent, keyboard-interactive, password)`)
    }
    const twice = (a as string[]).find((m, i) => (a as string[]).indexOf(m) !== i)
    if (twice !== undefined) bad('authOrder', `names '${twice}' twice (each method is tried once, in its place)`)
    if ((a as string[]).length === 0) bad('authOrder', 'is empty: name the methods to try')
    order = a as AuthMethodName[]
  }
  const auth = order.flatMap((m) => methods[m])

  const native: NativeConnectOptions = { host, port, username, auth, hostKeyMode: 'knownHosts' }
  let verify: Resolved['verify']
  const hk = o.hostKey
  if (hk === undefined || hk === null) {
    native.knownHosts = defaultKnownHostsFiles()
  } else if (hk === 'insecure-accept-any') {
    native.hostKeyMode = 'insecure'
  } else if (typeof hk === 'object' && Object.keys(hk).filter((k) => HOST_KEY_FORMS.includes(k)).length > 1) {
    bad('hostKey', `give one of knownHosts, fingerprint and verify, not ${Object.keys(hk).filter((k) => HOST_KEY_FORMS.includes(k)).join(' and ')}`)
  } else if (typeof hk === 'object' && 'knownHosts' in hk) {
    onlyKeys(hk, 'hostKey', ['knownHosts', 'acceptNew', 'hash', 'alias'])
    const files = (hk as { knownHosts: unknown }).knownHosts
    const list = typeof files === 'string' ? [files] : files
    // an empty list is a mistake, unless ssh_config said none
    const none = (hk as Record<symbol, unknown>)[KNOWN_HOSTS_NONE] === true
    if (!Array.isArray(list) || (list.length === 0 && !none) || !list.every((f) => typeof f === 'string' && f.length > 0)) {
      bad('hostKey.knownHosts', 'must be a path or a non-empty array of paths')
    }
    native.knownHosts = (list as string[]).map((f) => resolve(expandHome(f)))
    native.acceptNew = optBool(hk as Record<string, unknown>, 'acceptNew', 'hostKey.acceptNew')
    native.hashKnownHosts = optBool(hk as Record<string, unknown>, 'hash', 'hostKey.hash')
    const alias = (hk as { alias?: unknown }).alias
    if (alias !== undefined && alias !== null) {
      // one known_hosts name: a blank, a comma or a control character would make it another
      if (typeof alias !== 'string' || !alias || alias.length > 1024 || /[\s,\p{Cc}]/u.test(alias)) {
        bad('hostKey.alias', 'must be a host name as known_hosts lists it (no blanks, commas or control characters)')
      }
      native.hostKeyAlias = alias as string
    }
  } else if (typeof hk === 'object' && 'fingerprint' in hk) {
    onlyKeys(hk, 'hostKey', ['fingerprint'])
    const f = (hk as { fingerprint: unknown }).fingerprint
    const list = typeof f === 'string' ? [f] : f
    if (!Array.isArray(list) || list.length === 0 || !list.every((x) => typeof x === 'string' && /^(SHA256:)?[A-Za-z0-9+/]{43}=?$/.test(x.trim()))) {
      bad('hostKey.fingerprint', "must be 'SHA256:…' (43 base64 characters) or an array of them")
    }
    native.hostKeyMode = 'fingerprint'
    native.fingerprints = list as string[]
  } else if (typeof hk === 'object' && 'verify' in hk) {
    onlyKeys(hk, 'hostKey', ['verify'])
    const fn = (hk as { verify: unknown }).verify
    if (typeof fn !== 'function') bad('hostKey.verify', 'must be a function (key) => boolean | Promise<boolean>')
    native.hostKeyMode = 'verify'
    verify = async (key) => {
      try {
        return (await (fn as (k: HostKeyInfo) => boolean | Promise<boolean>)({ ...key })) === true
      } catch {
        return false
      }
    }
  } else {
    bad('hostKey', "must be { knownHosts }, { fingerprint }, { verify } or 'insecure-accept-any'")
  }

  if (o.algorithms !== undefined && o.algorithms !== null) {
    const a = o.algorithms as Record<string, unknown>
    if (typeof a !== 'object') bad('algorithms', 'must be an object { kex, cipher, mac, hostKey, compression }')
    for (const k of Object.keys(a)) {
      if (!['kex', 'cipher', 'mac', 'hostKey', 'compression'].includes(k)) bad(`algorithms.${k}`, 'unknown algorithm list (use kex, cipher, mac, hostKey, compression)')
    }
    native.algorithms = {
      kex: algorithmList('kex', a.kex),
      cipher: algorithmList('cipher', a.cipher),
      mac: algorithmList('mac', a.mac),
      hostKey: algorithmList('hostKey', a.hostKey),
      compression: algorithmList('compression', a.compression),
    }
  }
  const ct = optNumber(o, 'connectTimeout', 0, 2_147_483_647, false)
  native.connectTimeoutMs = ct ?? 20_000
  native.keepaliveIntervalMs = optNumber(o, 'keepaliveInterval', 0, 2_147_483_647, false)
  native.keepaliveCountMax = optNumber(o, 'keepaliveCountMax', 1, 1000)
  native.maxSessions = optNumber(o, 'maxSessions', 1, 1000)
  native.highWaterMark = optNumber(o, 'highWaterMark', 65536, 1024 ** 3)
  const af = o.agentForward
  if (af !== undefined && typeof af !== 'boolean' && (typeof af !== 'string' || af.length === 0)) {
    bad('agentForward', 'must be true, false or the agent socket path')
  }
  if (af === true && !process.env.SSH_AUTH_SOCK) bad('agentForward', 'is true but SSH_AUTH_SOCK is not set (no local agent to forward)')
  native.agentSocket = typeof af === 'string' ? resolve(expandHome(af)) : process.env.SSH_AUTH_SOCK || undefined
  native.agentForwardAll = af !== undefined && af !== false
  const proxy = optString(o, 'proxy')
  const proxyCommand = optString(o, 'proxyCommand')
  if (proxy !== undefined && proxyCommand !== undefined) bad('proxy', 'give either proxy or proxyCommand, not both')
  if (proxy !== undefined) native.proxy = proxy
  if (proxyCommand !== undefined) {
    if (!proxyCommand.trim()) bad('proxyCommand', 'must not be empty')
    native.proxyCommand = proxyCommand
    const alias = (o as Record<symbol, unknown>)[ORIGINAL_HOST]
    native.originalHost = typeof alias === 'string' ? alias : host
  }
  let signal: AbortSignal | undefined
  if (o.signal !== undefined && o.signal !== null) {
    if (!(o.signal instanceof AbortSignal)) bad('signal', 'must be an AbortSignal')
    signal = o.signal
  }
  let debug: Resolved['debug']
  if (o.debug === true) {
    debug = (line) => process.stderr.write(`ferrossh: ${line}\n`)
  } else if (typeof o.debug === 'function') {
    const fn = o.debug as (line: string) => void
    debug = (line) => {
      try {
        fn(line)
      } catch {
        // a throwing trace callback must not break the connection
      }
    }
  } else if (o.debug !== undefined && o.debug !== false) {
    bad('debug', 'must be true, false or a function (line) => void')
  }
  let sock: Resolved['sock']
  if (o.sock !== undefined && o.sock !== null) {
    const d = o.sock as { write?: unknown; on?: unknown; once?: unknown; end?: unknown }
    if (typeof d !== 'object' || typeof d.write !== 'function' || typeof d.on !== 'function' || typeof d.once !== 'function' || typeof d.end !== 'function') bad('sock', 'must be a connected Duplex stream')
    if (proxy !== undefined || proxyCommand !== undefined) bad('sock', 'cannot be combined with proxy or proxyCommand')
    sock = o.sock as import('node:stream').Duplex
  }
  return { native, verify, keyboardInteractive, signal, debug, sock }
}

/** Pseudo-terminal request. */
export interface PtyOptions {
  /** Default `xterm-256color`. */
  term?: string
  /** Terminal width in characters (default 80). */
  cols?: number
  /** Terminal height in rows (default 24). */
  rows?: number
  /** Terminal width in pixels (default 0: not given). */
  width?: number
  /** Terminal height in pixels (default 0: not given). */
  height?: number
  /**
   * Terminal modes (RFC 4254 §8), keyed by name as ssh2 takes them (`{ ECHO: 0, ICANON: 1,
   * TTY_OP_ISPEED: 38400 }`) or by opcode (`{ 53: 0 }`); each value is a uint32. Flags are 0 or
   * 1; control characters are character codes (`VINTR: 3`); the two speeds are in baud.
   */
  modes?: Record<string | number, number>
}

/** RFC 4254 §8 terminal modes (with RFC 8160's IUTF8), by name. */
const TERMINAL_MODES: Readonly<Record<string, number>> = {
  VINTR: 1, VQUIT: 2, VERASE: 3, VKILL: 4, VEOF: 5, VEOL: 6, VEOL2: 7, VSTART: 8, VSTOP: 9,
  VSUSP: 10, VDSUSP: 11, VREPRINT: 12, VWERASE: 13, VLNEXT: 14, VFLUSH: 15, VSWTCH: 16,
  VSTATUS: 17, VDISCARD: 18,
  IGNPAR: 30, PARMRK: 31, INPCK: 32, ISTRIP: 33, INLCR: 34, IGNCR: 35, ICRNL: 36, IUCLC: 37,
  IXON: 38, IXANY: 39, IXOFF: 40, IMAXBEL: 41, IUTF8: 42,
  ISIG: 50, ICANON: 51, XCASE: 52, ECHO: 53, ECHOE: 54, ECHOK: 55, ECHONL: 56, NOFLSH: 57,
  TOSTOP: 58, IEXTEN: 59, ECHOCTL: 60, ECHOKE: 61, PENDIN: 62,
  OPOST: 70, OLCUC: 71, ONLCR: 72, OCRNL: 73, ONOCR: 74, ONLRET: 75,
  CS7: 90, CS8: 91, PARENB: 92, PARODD: 93,
  TTY_OP_ISPEED: 128, TTY_OP_OSPEED: 129,
}
const TERMINAL_OPCODES = new Set(Object.values(TERMINAL_MODES))
const TERMINAL_MODE_NAMES = new Map(Object.entries(TERMINAL_MODES).map(([name, op]) => [op, name]))

/** `[opcode, value]` pairs by name, for the modes this table knows. @internal */
export function terminalModesByName(pairs: [number, number][]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [op, value] of pairs) {
    const name = TERMINAL_MODE_NAMES.get(op)
    if (name) out[name] = value
  }
  return out
}

function terminalModes(modes: unknown): [number, number][] {
  if (typeof modes !== 'object' || modes === null || Array.isArray(modes)) bad('pty.modes', 'must be an object such as { ECHO: 0 } (mode name or opcode: value)')
  return Object.entries(modes).map(([key, value]): [number, number] => {
    let op: number
    if (/^\d+$/.test(key)) {
      op = Number(key)
      if (!TERMINAL_OPCODES.has(op)) bad('pty.modes', `${key} is not a terminal mode opcode (RFC 4254 §8)`)
    } else {
      const named = TERMINAL_MODES[key.toUpperCase()]
      if (named === undefined) {
        const hint = closest(key, Object.keys(TERMINAL_MODES))
        bad('pty.modes', `unknown terminal mode '${key}'${hint ? `; did you mean '${hint}'?` : ''}`)
      }
      op = named
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      bad('pty.modes', `${key} must be an integer between 0 and 4294967295, got ${typeof value === 'number' ? value : typeof value}`)
    }
    return [op, value]
  })
}

/** @internal */
export function ptyToNative(pty: boolean | PtyOptions | undefined): NativePty | undefined {
  if (pty === undefined || pty === false) return undefined
  if (pty === true) return {}
  if (typeof pty !== 'object' || pty === null) bad('pty', 'must be true or { term, cols, rows, modes }')
  const ptyKeys = ['term', 'cols', 'rows', 'width', 'height', 'modes']
  for (const key of Object.keys(pty)) {
    if (ptyKeys.includes(key)) continue
    const hint = closest(key, ptyKeys)
    bad(`pty.${key}`, `unknown pty option '${key}'${hint ? `; did you mean '${hint}'?` : ''}`)
  }
  const dim = (k: keyof PtyOptions): number | undefined => intOf(pty[k], `pty.${k}`, 0, 65535)
  if (pty.term !== undefined && (typeof pty.term !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(pty.term))) {
    bad('pty.term', 'must be a terminal type name such as xterm-256color (1-64 printable characters, no spaces)')
  }
  const modes = pty.modes === undefined ? undefined : terminalModes(pty.modes)
  return { term: pty.term, cols: dim('cols'), rows: dim('rows'), width: dim('width'), height: dim('height'), modes }
}

/** An integer option in [min, max], or undefined when not given. @internal */
export function intOf(v: unknown, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer between ${min} and ${max}`
    throw new ConfigError(`${option}: must be ${range}, got ${typeof v === 'number' ? v : typeof v}`, { option })
  }
  return v
}

/**
 * An options argument: undefined and null mean none (as in fs); anything but an object is a
 * ConfigError. @internal
 */
export function optionsOf<T extends object>(o: T | null | undefined): T {
  if (o === undefined || o === null) return {} as T
  if (typeof o !== 'object') throw new ConfigError(`options: must be an object, got ${typeof o}`, { option: 'options' })
  return o
}

/**
 * The flags and the signal of a call that opens a channel, checked before anything is sent
 * (a wrong type would otherwise reach the binding's conversion as a plain Error). @internal
 */
/** The options each call takes: anything else is a misspelling, refused as connect() refuses one. @internal */
export const CALL_OPTIONS = {
  exec: ['stdin', 'env', 'pty', 'timeout', 'maxBuffer', 'signal', 'check', 'agentForward', 'x11'],
  spawn: ['env', 'pty', 'signal', 'agentForward', 'x11'],
  shell: ['env', 'pty', 'signal', 'agentForward', 'x11'],
  subsystem: ['signal'],
} as const

/**
 * The largest command or environment variable a session request may carry: OpenSSH drops the
 * whole connection over a packet larger than 256 KiB (and a NUL in one), so such a request is
 * refused here, for that call alone. @internal
 */
export const MAX_REQUEST_STRING = 250 * 1024

/** A password or answer sshd can take; the message never quotes it. @internal */
export function checkSecretString(v: string, option: string, what: string): void {
  if (v.includes('\0')) bad(option, `${what} contains a NUL byte, which the server would drop the connection over`)
  if (Buffer.byteLength(v) > MAX_REQUEST_STRING) bad(option, `${what} is longer than an authentication request carries (${MAX_REQUEST_STRING} bytes; the server would drop the connection)`)
}

/** `o[key]` when it is a boolean; undefined is false; anything else is a ConfigError. */
function optBool(o: Record<string, unknown>, key: string, option: string): boolean {
  const v = o[key]
  if (v === undefined || v === null) return false
  if (typeof v !== 'boolean') bad(option, `must be true or false, got ${typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v}`)
  return v
}

/** A command or subsystem name sshd can take (no NUL, not too long for one packet). @internal */
export function checkRequestString(v: string, option: string, what: string): void {
  if (v.includes('\0')) bad(option, `${what} contains a NUL byte, which the server would drop the connection over`)
  if (Buffer.byteLength(v) > MAX_REQUEST_STRING) bad(option, `${what} is ${Buffer.byteLength(v)} bytes; a session request carries at most ${MAX_REQUEST_STRING} (the server would drop the connection)`)
}

/** Refuses an option name `call` does not take, naming the likely one. @internal */
export function checkOptionNames(o: object, call: string, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key)) continue
    const hint = closest(key, known)
    throw new ConfigError(`${call}: unknown option '${key}'${hint ? `; did you mean '${hint}'?` : ''}`, { option: key })
  }
}

export function checkCallOptions(o: { agentForward?: unknown; check?: unknown; signal?: unknown }, call: keyof typeof CALL_OPTIONS = 'exec'): void {
  checkOptionNames(o, call, CALL_OPTIONS[call])
  for (const k of ['agentForward', 'check'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') bad(k, `must be a boolean, got ${typeof o[k]}`)
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) bad('signal', 'must be an AbortSignal')
}

/** The arguments of `resize()`. @internal */
export function checkTerminalSize(cols: unknown, rows: unknown, width: unknown = 0, height: unknown = 0): void {
  for (const [k, v] of [['cols', cols], ['rows', rows], ['width', width], ['height', height]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
      throw new ConfigError(`resize: ${k} must be an integer between 0 and 65535, got ${typeof v === 'number' ? v : typeof v}`, { option: k })
    }
  }
}

/** The argument of `kill()`; the binding checks the name itself. @internal */
export function checkSignalName(signal: unknown): void {
  if (typeof signal !== 'string') throw new ConfigError('kill: signal must be a name such as TERM', { option: 'signal' })
}

/** X11 forwarding: `true` forwards `$DISPLAY`; the real cookie is read with `xauth list`. */
export interface X11Options {
  /** Local display (`:0`, `host:0`, or a socket path). Default `$DISPLAY`. */
  display?: string
  /** The local display's MIT-MAGIC-COOKIE-1 as hex; default from `xauth list`, none if xauth has none. */
  cookie?: string
  /** Forward only the first X11 connection. */
  single?: boolean
  /** X screen number sent to the server; default: the one in `display` (`:0.1` → 1), else 0. */
  screen?: number
}

/** @internal */
export function x11ToNative(x11: boolean | X11Options | undefined): { display: string; cookie?: string; single?: boolean; screen?: number } | undefined {
  if (x11 === undefined || x11 === false) return undefined
  const o: X11Options = x11 === true ? {} : x11
  if (typeof o !== 'object' || o === null) bad('x11', 'must be true or { display, cookie, single, screen }')
  const display = o.display ?? process.env.DISPLAY
  if (!display || typeof display !== 'string') bad('x11', 'no X display: set DISPLAY or pass x11: { display }')
  let cookie = o.cookie
  if (cookie !== undefined && (typeof cookie !== 'string' || !/^([0-9a-fA-F]{2})*$/.test(cookie))) bad('x11.cookie', 'must be hex digits')
  if (o.single !== undefined && typeof o.single !== 'boolean') bad('x11.single', `must be a boolean, got ${typeof o.single}`)
  intOf(o.screen, 'x11.screen', 0, 65535)
  if (cookie === undefined) cookie = xauthCookie(display)
  return { display, cookie, single: o.single, screen: o.screen }
}

function xauthCookie(display: string): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process')
    const out = execFileSync('xauth', ['list', display], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
    const m = /MIT-MAGIC-COOKIE-1\s+([0-9a-fA-F]+)/.exec(out)
    return m?.[1]
  } catch {
    return undefined
  }
}

/** @internal */
export function envToNative(env: Record<string, string> | undefined): string[][] | undefined {
  if (env === undefined) return undefined
  if (env === null || typeof env !== 'object') bad('env', 'must be an object of name → value')
  return Object.entries(env).map(([k, v]) => {
    if (typeof v !== 'string') bad('env', `value of ${k} must be a string`)
    if (v.includes('\0')) bad('env', `value of ${k} contains a NUL byte, which the server would drop the connection over`)
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_REQUEST_STRING) bad('env', `${k} is longer than a session request carries (${MAX_REQUEST_STRING} bytes; the server would drop the connection)`)
    return [k, v]
  })
}
