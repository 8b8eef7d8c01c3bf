import { existsSync } from 'node:fs'
import { resolve as resolvePath } from 'node:path'

import { ConfigError, fromNative } from './errors'
import binding from './native'
import type { ConnectOptions } from './options'
import { expandHome } from './paths'
import { withSignal } from './signal'

/** OpenSSH's spelling of each keyword `ssh -G` prints in lowercase (camelCased from it). */
const SPELLING = [
  'AddKeysToAgent', 'AddressFamily', 'BatchMode', 'BindAddress', 'BindInterface', 'CanonicalDomains',
  'CanonicalizeFallbackLocal', 'CanonicalizeHostname', 'CanonicalizeMaxDots', 'CanonicalizePermittedCNAMEs',
  'CASignatureAlgorithms', 'CertificateFile', 'CheckHostIP', 'Ciphers', 'ClearAllForwardings', 'Compression',
  'ConnectionAttempts', 'ConnectTimeout', 'ControlMaster', 'ControlPath', 'ControlPersist', 'DynamicForward',
  'EnableEscapeCommandline', 'EnableSSHKeysign', 'EscapeChar', 'ExitOnForwardFailure', 'FingerprintHash',
  'ForkAfterAuthentication', 'ForwardAgent', 'ForwardX11', 'ForwardX11Timeout', 'ForwardX11Trusted',
  'GatewayPorts', 'GlobalKnownHostsFile', 'GSSAPIAuthentication', 'GSSAPIDelegateCredentials', 'HashKnownHosts',
  'HostbasedAcceptedAlgorithms', 'HostbasedAuthentication', 'HostKeyAlgorithms', 'HostKeyAlias', 'HostName',
  'IdentitiesOnly', 'IdentityAgent', 'IdentityFile', 'IgnoreUnknown', 'IPQoS', 'KbdInteractiveAuthentication',
  'KbdInteractiveDevices', 'KexAlgorithms', 'KnownHostsCommand', 'LocalCommand', 'LocalForward', 'LogLevel',
  'LogVerbose', 'MACs', 'NoHostAuthenticationForLocalhost', 'NumberOfPasswordPrompts', 'ObscureKeystrokeTiming',
  'PasswordAuthentication', 'PermitLocalCommand', 'PermitRemoteOpen', 'PKCS11Provider', 'Port',
  'PreferredAuthentications', 'ProxyCommand', 'ProxyJump', 'ProxyUseFdpass', 'PubkeyAcceptedAlgorithms',
  'PubkeyAuthentication', 'RekeyLimit', 'RemoteCommand', 'RemoteForward', 'RequestTTY', 'RequiredRSASize',
  'RevokedHostKeys', 'SecurityKeyProvider', 'SendEnv', 'ServerAliveCountMax', 'ServerAliveInterval', 'SessionType',
  'SetEnv', 'StdinNull', 'StreamLocalBindMask', 'StreamLocalBindUnlink', 'StrictHostKeyChecking', 'SyslogFacility',
  'TCPKeepAlive', 'Tag', 'Tunnel', 'TunnelDevice', 'UpdateHostKeys', 'User', 'UserKnownHostsFile', 'VerifyHostKeyDNS',
  'VisualHostKey', 'XAuthLocation',
]
const CAMEL = new Map(SPELLING.map((k) => [k.toLowerCase(), k[0].toLowerCase() + k.slice(1)]))
CAMEL.set('hostname', 'hostname')
CAMEL.set('macs', 'macs')

/** Keywords that may appear several times or hold several values: always arrays. */
const MULTI = new Set(['identityfile', 'certificatefile', 'localforward', 'remoteforward', 'dynamicforward', 'sendenv', 'setenv', 'userknownhostsfile', 'globalknownhostsfile', 'canonicaldomains', 'permitremoteopen'])

/** An OpenSSH client configuration resolved for one host: every `ssh -G` key, camelCased. */
export interface ResolvedConfig {
  /** The host to connect to (HostName, or the name given). */
  hostname: string
  /** Remote user. */
  user: string
  /** Remote port. */
  port: number
  /** Identity files, `~` and `%` tokens expanded. */
  identityFile: string[]
  /** Certificate files, expanded. */
  certificateFile: string[]
  /** Known hosts files. */
  userKnownHostsFile: string[]
  /** System known hosts files. */
  globalKnownHostsFile: string[]
  /** `LocalForward` specs as `ssh -G` prints them. */
  localForward: string[]
  /** `RemoteForward` specs. */
  remoteForward: string[]
  /** `DynamicForward` specs. */
  dynamicForward: string[]
  /** `SendEnv` patterns. */
  sendEnv: string[]
  /** `SetEnv` assignments (`NAME=value`). */
  setEnv: string[]
  /** `ProxyJump`, when set. */
  proxyJump?: string
  /** `ProxyCommand`, when set (tokens not yet expanded). */
  proxyCommand?: string
  /** Every other keyword. */
  [key: string]: string | number | string[] | undefined
}

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions {
  /** A file to read instead of `~/.ssh/config` (like `ssh -F`; `/etc/ssh/ssh_config` is then skipped). */
  file?: string
  /** The user given explicitly (like `ssh -l`); wins over `User`. */
  user?: string
  /** The port given explicitly (like `ssh -p`); wins over `Port`. */
  port?: number
}


type RawEntries = ReturnType<typeof binding.resolveConfig>
type Raw = { resolved: ResolvedConfig; explicit: Set<string> }
const RESOLVE_KEYS = new Set(['file', 'user', 'port'])

/** The checked arguments of a resolution. */
function resolveArgs(host: string, o: ResolveConfigOptions): [string, string | undefined, string | undefined, number | undefined] {
  if (typeof host !== 'string' || !host) throw new ConfigError('resolveConfig: host must be a non-empty string', { option: 'host' })
  if (o === null || o === undefined) o = {}
  if (typeof o !== 'object') throw new ConfigError(`resolveConfig: options must be an object, got ${typeof o}`, { option: 'options' })
  for (const k of Object.keys(o)) {
    if (!RESOLVE_KEYS.has(k)) throw new ConfigError(`resolveConfig: unknown option '${k}' (known: file, user, port)`, { option: k })
  }
  for (const k of ['file', 'user'] as const) {
    if (o[k] !== undefined && (typeof o[k] !== 'string' || !o[k])) throw new ConfigError(`resolveConfig: ${k} must be a non-empty string`, { option: k })
  }
  if (o.port !== undefined && (typeof o.port !== 'number' || !Number.isInteger(o.port) || o.port < 1 || o.port > 65535)) {
    throw new ConfigError('resolveConfig: port must be an integer between 1 and 65535', { option: 'port' })
  }
  const file = o.file === undefined ? undefined : resolvePath(expandHome(o.file))
  return [host, file, o.user, o.port]
}

function fromEntries(entries: RawEntries): Raw {
  const out: Record<string, unknown> = {}
  const explicit = new Set<string>()
  for (const { key, values, explicit: ex } of entries) {
    const name = CAMEL.get(key) ?? key
    if (ex) explicit.add(name)
    out[name] = MULTI.has(key) ? values : key === 'port' ? Number(values[0]) : values.join(' ')
  }
  for (const k of MULTI) {
    const name = CAMEL.get(k) ?? k
    if (out[name] === undefined) out[name] = []
  }
  return { resolved: out as ResolvedConfig, explicit }
}

function resolveRaw(host: string, o: ResolveConfigOptions): Raw {
  const args = resolveArgs(host, o)
  let entries
  try {
    entries = binding.resolveConfig(...args)
  } catch (e) {
    throw fromNative(e)
  }
  return fromEntries(entries)
}

/** `resolveRaw` off the event loop: a `Match exec` command runs on a worker thread, killed by the signal or the timeout. */
async function resolveRawAsync(host: string, o: ResolveConfigOptions, signal: AbortSignal | undefined, timeoutMs: number): Promise<Raw> {
  const args = resolveArgs(host, o)
  return fromEntries(await withSignal(signal, (cancel) => binding.resolveConfigAsync(...args, cancel, timeoutMs)))
}

/**
 * Resolves the OpenSSH client configuration for `host` exactly as `ssh -G host` does:
 * Host/Match blocks, Include, first value wins, `%` tokens and `~`.
 * @example
 * const cfg = resolveConfig('prod-db')   // { hostname, user, port, identityFile: [...], proxyJump, ... }
 */
export function resolveConfig(host: string, options: ResolveConfigOptions = {}): ResolvedConfig {
  return resolveRaw(host, options).resolved
}

const seconds = (v: unknown): number | undefined => {
  const n = Number(v)
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined
}

/** The host as the caller named it, before HostName replaced it: what `%n` expands to. @internal */
export const ORIGINAL_HOST = Symbol('ferrossh.originalHost')

/**
 * Set when the authentication options came from the configuration: the identity and
 * certificate files it found. What the file leaves out (`IdentityAgent none`, `IdentitiesOnly
 * yes`, missing files) stays out: no agent and no default keys are added to it. @internal
 */
export const CONFIG_AUTH = Symbol('ferrossh.configAuth')

/** What {@link CONFIG_AUTH} holds. @internal */
export interface ConfigAuth {
  identities: string[]
  certificates: string[]
  /** IdentitiesOnly: the agent offers only its copies of these identities (and the certificates' keys). */
  identitiesOnly: boolean
}

/**
 * Marks a known_hosts policy whose file list `UserKnownHostsFile none` and
 * `GlobalKnownHostsFile none` emptied: no file is read, so every key is unknown. @internal
 */
export const KNOWN_HOSTS_NONE = Symbol('ferrossh.knownHostsNone')

/**
 * Fills connect options from the configuration (options given explicitly always win).
 * @internal
 */
export async function applySshConfig(options: ConnectOptions, bound: Pick<ConnectOptions, 'signal' | 'connectTimeout'> = options): Promise<ConnectOptions> {
  const sc = options.sshConfig
  if (sc === undefined || sc === false) return options
  if (sc !== true && (typeof sc !== 'string' || !sc)) throw new ConfigError('sshConfig: must be true (~/.ssh/config) or a file path', { option: 'sshConfig' })
  const file = sc === true ? undefined : sc
  // `user` is the short name of `username`: given either way, it is the caller's and wins
  const given = options.username ?? (options as { user?: unknown }).user
  const user = typeof given === 'string' ? given : undefined
  // bounded as the connect is: `Match exec` commands count against its timeout and signal
  const ct = bound.connectTimeout
  const timeoutMs = typeof ct === 'number' && Number.isInteger(ct) && ct >= 0 && ct <= 2_147_483_647 ? ct : 20_000
  const signal = bound.signal instanceof AbortSignal ? bound.signal : undefined
  const { resolved: c, explicit } = await resolveRawAsync(options.host, { file, user, port: options.port }, signal, timeoutMs)
  const o: Record<string, unknown> = { ...options }
  delete o.sshConfig
  if (user !== undefined) {
    delete o.user
    o.username = user
  }
  const set = (k: keyof ConnectOptions, v: unknown): void => {
    if (o[k] === undefined && v !== undefined) o[k] = v
  }
  o[ORIGINAL_HOST as unknown as string] = options.host
  o.host = c.hostname
  set('port', c.port)
  set('username', c.user)
  const hasAuth = ['privateKey', 'privateKeyPath', 'password', 'agent', 'keyboardInteractive'].some((k) => o[k] !== undefined)
  if (!hasAuth) {
    // like ssh: identity files that do not exist are skipped, and a relative one is opened
    // from the working directory; with only `<file>.pub` there, the agent's copy of that key
    // is the identity
    const ids = c.identityFile
      .map((f) => resolvePath(f))
      .map((f) => (existsSync(f) ? f : existsSync(`${f}.pub`) ? `${f}.pub` : undefined))
      .filter((f): f is string => f !== undefined)
    if (ids.length) set('privateKeyPath', ids)
    // every CertificateFile that exists, each presented with the key it certifies
    const certificates = explicit.has('certificateFile') ? c.certificateFile.map((f) => resolvePath(f)).filter((f) => existsSync(f)) : []
    // the file decides alone: ssh adds nothing the file does not give (the default key files
    // are already among its IdentityFiles when it names none)
    const identitiesOnly = c.identitiesOnly === 'yes'
    const auth: ConfigAuth = { identities: ids, certificates, identitiesOnly }
    o[CONFIG_AUTH as unknown as string] = auth
    const ia = typeof c.identityAgent === 'string' ? c.identityAgent : undefined
    // IdentitiesOnly keeps the agent to its copies of the identities listed, as ssh does
    if (ia !== 'none' && (!identitiesOnly || ids.length > 0 || certificates.length > 0)) {
      // as ssh reads IdentityAgent: SSH_AUTH_SOCK or $NAME name an environment variable
      const sock = !ia || ia === 'SSH_AUTH_SOCK' ? process.env.SSH_AUTH_SOCK : ia.startsWith('$') ? process.env[ia.slice(1)] : expandHome(ia)
      if (sock) set('agent', sock)
    }
  }
  // a route given here (a jump, a proxy command, a proxy, a socket) replaces the file's whole
  if (!['proxyJump', 'proxyCommand', 'proxy', 'sock'].some((k) => o[k] !== undefined)) {
    if (c.proxyJump && c.proxyJump !== 'none') set('proxyJump', c.proxyJump)
    else if (c.proxyCommand && c.proxyCommand !== 'none') set('proxyCommand', c.proxyCommand)
  }
  if (o.hostKey === undefined && ['userKnownHostsFile', 'globalKnownHostsFile', 'strictHostKeyChecking', 'hashKnownHosts', 'hostKeyAlias'].some((k) => explicit.has(k))) {
    // "none" names no file, as in ssh
    const named = (list: string[]): string[] => list.filter((f) => f !== 'none').map(expandHome)
    const user = named(c.userKnownHostsFile)
    const files = [...user, ...named(c.globalKnownHostsFile)]
    const strict = String(c.strictHostKeyChecking ?? 'ask')
    // ssh's "no" also adds unknown keys; a changed key is refused either way. New keys go to
    // the first user file only: with none, ssh records nothing and refuses the unknown key
    const acceptNew = (strict === 'accept-new' || strict === 'false' || strict === 'no') && user.length > 0
    const policy: { knownHosts: string[]; acceptNew: boolean; hash: boolean; alias?: string; [KNOWN_HOSTS_NONE]?: true } = { knownHosts: files, acceptNew, hash: c.hashKnownHosts === 'yes' }
    if (!files.length) policy[KNOWN_HOSTS_NONE] = true
    if (explicit.has('hostKeyAlias') && typeof c.hostKeyAlias === 'string') policy.alias = c.hostKeyAlias
    o.hostKey = policy
  }
  if (explicit.has('serverAliveInterval')) set('keepaliveInterval', seconds(c.serverAliveInterval))
  if (explicit.has('serverAliveCountMax')) set('keepaliveCountMax', Number(c.serverAliveCountMax) || undefined)
  if (explicit.has('connectTimeout')) set('connectTimeout', seconds(c.connectTimeout))
  if (explicit.has('forwardAgent') && c.forwardAgent === 'yes' && process.env.SSH_AUTH_SOCK) set('agentForward', true)
  const algos: Record<string, string[]> = {}
  const supported = binding.supportedAlgorithms()
  const pick = (name: string, list: unknown, from: string[] | undefined): void => {
    if (!explicit.has(name) || typeof list !== 'string') return
    const given = list.split(',').filter(Boolean)
    const names = given.filter((a) => (from ?? []).includes(a))
    const key = name === 'kexAlgorithms' ? 'kex' : name === 'ciphers' ? 'cipher' : name === 'macs' ? 'mac' : 'hostKey'
    // a restriction we cannot honour must not widen into our defaults: ssh would use only these
    if (!names.length && !(options.algorithms as Record<string, unknown> | undefined)?.[key]) {
      throw new ConfigError(`${name}: none of ${given.join(', ')} is supported by ferrossh (supported: ${(from ?? []).join(', ')}); pass algorithms.${key} to override`, { option: name })
    }
    if (names.length) algos[key] = names
  }
  pick('ciphers', c.ciphers, supported.cipher)
  pick('kexAlgorithms', c.kexAlgorithms, supported.kex)
  pick('macs', c.macs, supported.mac)
  pick('hostKeyAlgorithms', c.hostKeyAlgorithms, supported.hostKey)
  if (explicit.has('compression') && c.compression === 'yes') algos.compression = ['zlib@openssh.com', 'zlib', 'none']
  if (Object.keys(algos).length) o.algorithms = { ...algos, ...(options.algorithms ?? {}) }
  return o as unknown as ConnectOptions
}
