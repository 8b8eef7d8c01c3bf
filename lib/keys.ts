import { ConfigError, fromNative } from './errors'
import binding from './native'

/** Public facts about a key; the secret part never leaves the native side. */
export interface KeyInfo {
  /** `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, … */
  type: string
  /** Key size in bits (256 for ed25519; the curve size for ecdsa; the modulus size for rsa). */
  bits: number
  /** `SHA256:…`, as `ssh-keygen -l` prints it */
  fingerprint: string
  /** authorized_keys line */
  publicKey: string
  /** The key's comment (often `user@host`); empty when it has none. */
  comment: string
  /** The private key is stored encrypted. */
  encrypted: boolean
}

/** A new key pair. */
export interface GeneratedKey {
  /** OpenSSH private key file contents (encrypted when a passphrase was given). */
  privateKey: string
  /** authorized_keys line */
  publicKey: string
  /** `SHA256:…`, as `ssh-keygen -l` prints it */
  fingerprint: string
}

/** Options of {@link generateKey}. */
export interface GenerateKeyOptions {
  /** The key type, as `ssh-keygen -t`. */
  type: 'ed25519' | 'ecdsa' | 'rsa'
  /** ecdsa: 256 (default), 384 or 521; rsa: 2048–16384 (default 3072). */
  bits?: number
  /** The key's comment, as `ssh-keygen -C` (often `user@host`). */
  comment?: string
  /** Encrypts the private key (aes256-ctr, bcrypt-pbkdf), as `ssh-keygen -N`. */
  passphrase?: string
}

function toBuffer(data: string | Buffer, option: string): Buffer {
  if (typeof data === 'string') return Buffer.from(data)
  if (Buffer.isBuffer(data)) return data
  throw new ConfigError(`${option}: must be a string or a Buffer`, { option })
}

/**
 * Reads a private key (OpenSSH, PEM PKCS#1/PKCS#8/SEC1, PuTTY PPK) or a public key and
 * tells its type and fingerprint. An encrypted key without its passphrase still shows
 * its public half where the format stores it in clear.
 * @example
 * const { type, fingerprint } = parseKey(readFileSync('id_ed25519'))
 */
export function parseKey(data: string | Buffer, passphrase?: string): KeyInfo {
  if (passphrase !== undefined && typeof passphrase !== 'string') throw new ConfigError('passphrase: must be a string', { option: 'passphrase' })
  try {
    const k = binding.parseKey(toBuffer(data, 'key'), passphrase)
    return { type: k.keyType, bits: k.bits, fingerprint: k.fingerprint, publicKey: k.publicKey, comment: k.comment, encrypted: k.encrypted }
  } catch (e) {
    throw fromNative(e)
  }
}

/**
 * Generates a key pair in OpenSSH format, accepted by `ssh-keygen` and OpenSSH.
 * @example
 * const { privateKey, publicKey } = generateKey({ type: 'ed25519', comment: 'deploy' })
 */
export function generateKey(options: GenerateKeyOptions): GeneratedKey {
  if (options === null || typeof options !== 'object') throw new ConfigError('generateKey needs { type }', { option: 'type' })
  for (const k of Object.keys(options)) {
    if (!['type', 'bits', 'comment', 'passphrase'].includes(k)) throw new ConfigError(`generateKey: unknown option '${k}' (known: type, bits, comment, passphrase)`, { option: k })
  }
  const { type, bits, comment, passphrase } = options
  if (typeof type !== 'string') throw new ConfigError("type: must be 'ed25519', 'ecdsa' or 'rsa'", { option: 'type' })
  if (bits !== undefined && (!Number.isInteger(bits) || bits <= 0 || bits > 0xffff_ffff)) throw new ConfigError('bits: must be a positive integer', { option: 'bits' })
  if (comment !== undefined && typeof comment !== 'string') throw new ConfigError('comment: must be a string', { option: 'comment' })
  if (passphrase !== undefined && typeof passphrase !== 'string') throw new ConfigError('passphrase: must be a string', { option: 'passphrase' })
  try {
    return binding.generateKey(type, bits, comment, passphrase)
  } catch (e) {
    throw fromNative(e)
  }
}
