import { applySshConfig, CONFIG_AUTH } from './config'
import { ConfigError } from './errors'
import type { ConnectOptions } from './options'

/** One jump host: a spec string (`user@host:port`), options, or a connected client. */
export type JumpHost = string | Partial<ConnectOptions> | {
  /** True once the client's connection has ended. */
  readonly isClosed: boolean
}

/** Whether a ProxyJump value is `none`: a direct connection, as `ssh -J none` (which also overrides the file's route). @internal */
export function isNoJump(spec: unknown): boolean {
  return typeof spec === 'string' && spec.trim().toLowerCase() === 'none'
}

/**
 * Splits an OpenSSH ProxyJump value (`user@bastion:2222,[2001:db8::1]:22,hop2`) into hops.
 * @internal
 */
export function parseJumpSpec(spec: string): { host: string; port?: number; username?: string }[] {
  if (typeof spec !== 'string' || spec.trim() === '') throw new ConfigError('proxyJump: must not be empty', { option: 'proxyJump' })
  return spec.split(',').map((raw) => {
    let s = raw.trim()
    if (s.startsWith('ssh://')) s = s.slice('ssh://'.length)
    let username: string | undefined
    const at = s.lastIndexOf('@')
    if (at >= 0) {
      username = s.slice(0, at)
      s = s.slice(at + 1)
    }
    let host = s
    let port: number | undefined
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
    if (v6) {
      host = v6[1]
      port = v6[2] === undefined ? undefined : Number(v6[2])
    } else if (/^[^:]+:\d+$/.test(s)) {
      const i = s.lastIndexOf(':')
      host = s.slice(0, i)
      port = Number(s.slice(i + 1))
    } else if (s.includes(':') && !/^[0-9a-fA-F:]+$/.test(s)) {
      throw new ConfigError(`proxyJump: cannot read hop '${raw.trim()}' (use [user@]host[:port], IPv6 as [addr]:port)`, { option: 'proxyJump' })
    }
    if (!host || (username !== undefined && username === '')) {
      throw new ConfigError(`proxyJump: cannot read hop '${raw.trim()}'`, { option: 'proxyJump' })
    }
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      throw new ConfigError(`proxyJump: port of hop '${raw.trim()}' must be between 1 and 65535`, { option: 'proxyJump' })
    }
    return { host, port, username }
  })
}

/** Options a hop takes from the target when it gives none of its own. @internal */
const INHERITED: (keyof ConnectOptions)[] = [
  'username', 'privateKey', 'privateKeyPath', 'passphrase', 'certificate', 'certificatePath', 'agent',
  'keyboardInteractive', 'connectTimeout', 'keepaliveInterval', 'keepaliveCountMax', 'algorithms', 'debug',
  // one AbortSignal ends the whole chain, whichever hop is connecting
  'signal',
]

/** Builds the options of one hop. Host key policy is inherited unless it pins a fingerprint (that is the target's key); a known_hosts alias is not. @internal */
export function hopOptions(hop: Partial<ConnectOptions>, target: ConnectOptions): ConnectOptions {
  const out: Record<string, unknown> = {}
  for (const k of INHERITED) if (target[k] !== undefined) out[k] = target[k]
  // `user` is the short name of `username`, on the target and on the hop alike
  const targetUser = target.username ?? (target as { user?: unknown }).user
  if (targetUser !== undefined) out.username = targetUser
  if (hop.username !== undefined || (hop as { user?: unknown }).user !== undefined) delete out.username
  const hk = target.hostKey
  if (hk !== undefined && !(typeof hk === 'object' && 'fingerprint' in hk)) {
    // an alias names the target's key, not the hop's: the hop looks itself up by its own name
    if (typeof hk === 'object' && 'knownHosts' in hk && hk.alias !== undefined) {
      const { alias: _alias, ...rest } = hk
      out.hostKey = rest
    } else out.hostKey = hk
  }
  // the hop's own authentication replaces the target's as a whole
  const ownAuth = hop.privateKey !== undefined || hop.privateKeyPath !== undefined || hop.agent !== undefined || hop.password !== undefined
  if (ownAuth) {
    for (const k of ['privateKey', 'privateKeyPath', 'passphrase', 'certificate', 'certificatePath', 'agent']) delete out[k]
  }
  // keys a hop leaves undefined (a spec without user@ or :port) keep the inherited value
  const own = Object.fromEntries(Object.entries(hop).filter(([, v]) => v !== undefined))
  const result: Record<string | symbol, unknown> = { ...out, ...own }
  // whether the methods came from ssh_config goes with the methods
  const from = (x: object): unknown => (x as Record<symbol, unknown>)[CONFIG_AUTH]
  const configAuth = ownAuth ? from(hop) : from(target) ?? from(hop)
  if (configAuth !== undefined) result[CONFIG_AUTH] = configAuth
  return result as unknown as ConnectOptions
}

/** A proxyJump value that names no hop. @internal */
export function noJump(jump: unknown): boolean {
  return jump === undefined || jump === null || (Array.isArray(jump) && jump.length === 0)
}

/** Options without their route through jump hosts. @internal */
export function withoutJump(o: Partial<ConnectOptions>): Partial<ConnectOptions> {
  const { proxyJump: _jump, ...rest } = o
  return rest
}

/**
 * Flattens a proxyJump value into the hops in the order they are dialled: a hop given as
 * options with a `proxyJump` of its own is reached through those hops first (as
 * `ssh -J`'s hops would be), and one with `sshConfig` is resolved through that file, as
 * the target is. Hops named in a string are resolved through the target's file, if any.
 * A ProxyJump a file gives for a hop is not followed (ssh would loop on `Host *`).
 * Connected clients pass through as they are; the caller checks them. @internal
 */
export async function expandJump(
  jump: unknown,
  sshConfig: ConnectOptions['sshConfig'],
  bound: ConnectOptions,
  isClient: (h: unknown) => boolean,
  seen: Set<object> = new Set(),
): Promise<unknown[]> {
  const out: unknown[] = []
  for (const h of Array.isArray(jump) ? jump : [jump]) {
    if (typeof h === 'string') {
      for (const hop of parseJumpSpec(h)) {
        out.push(sshConfig ? withoutJump(await applySshConfig({ ...hop, sshConfig } as ConnectOptions, bound)) : hop)
      }
      continue
    }
    if (h === null || typeof h !== 'object' || isClient(h) || typeof (h as ConnectOptions).host !== 'string') {
      out.push(h)
      continue
    }
    const o = h as Partial<ConnectOptions>
    if (seen.has(o)) throw new ConfigError(`proxyJump: hop ${o.host} is among its own jump hosts`, { option: 'proxyJump' })
    const own = o.proxyJump
    if (!noJump(own) && (o.proxy !== undefined || o.proxyCommand !== undefined || o.sock !== undefined)) {
      throw new ConfigError(`proxyJump: hop ${o.host} gives both proxyJump and ${o.proxy !== undefined ? 'proxy' : o.proxyCommand !== undefined ? 'proxyCommand' : 'sock'}`, { option: 'proxyJump' })
    }
    const ownConfig = o.sshConfig !== undefined && o.sshConfig !== false ? o.sshConfig : undefined
    // the hop's own proxyJump is a route it gives, so the file's route does not replace it
    const hop = ownConfig === undefined ? withoutJump(o) : withoutJump(await applySshConfig(o as ConnectOptions, bound))
    if (!noJump(own)) {
      seen.add(o)
      out.push(...(await expandJump(own, ownConfig ?? sshConfig, bound, isClient, seen)))
      seen.delete(o)
    }
    out.push(hop)
  }
  return out
}
