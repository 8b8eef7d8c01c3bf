import { connect, type SshClient } from './client'
import type { AlgorithmOptions, AuthMethodName, ConnectOptions, HostKeyInfo, KeyboardInteractiveHandler } from './options'

/**
 * Builds {@link ConnectOptions} step by step.
 * @example
 * const ssh = await SshClient.builder().host('app.internal').user('deploy')
 *   .identityFile('~/.ssh/id_ed25519').knownHosts('~/.ssh/known_hosts').connect()
 */
export class SshClientBuilder {
  #o: Partial<ConnectOptions> = {}

  /** The server's host name or address. */
  host(host: string): this { this.#o.host = host; return this }
  /** The server's port (default 22). */
  port(port: number): this { this.#o.port = port; return this }
  /** The remote user name. */
  user(username: string): this { this.#o.username = username; return this }
  /** The same as {@link SshClientBuilder.user}. */
  username(username: string): this { return this.user(username) }
  /** A private key file (`~` expanded), with its passphrase when encrypted. */
  identityFile(path: string, passphrase?: string): this {
    this.#o.privateKeyPath = path
    if (passphrase !== undefined) this.#o.passphrase = passphrase
    return this
  }
  /** A private key given as text or bytes. */
  privateKey(key: string | Buffer, passphrase?: string): this {
    this.#o.privateKey = key
    if (passphrase !== undefined) this.#o.passphrase = passphrase
    return this
  }
  /** A password for `password` authentication. */
  password(password: string): this { this.#o.password = password; return this }
  /** Authenticate with an SSH agent (`$SSH_AUTH_SOCK`, or the given socket). */
  agent(socket: string | true = true): this { this.#o.agent = socket; return this }
  /** An OpenSSH user certificate file, presented with the key it certifies (one given, or the agent's); call again for more. */
  certificateFile(path: string): this {
    const had = this.#o.certificatePath
    this.#o.certificatePath = had === undefined ? path : [...(Array.isArray(had) ? had : [had]), path]
    return this
  }
  /** Answers `keyboard-interactive` prompts (PAM passwords, one-time codes). */
  keyboardInteractive(handler: KeyboardInteractiveHandler): this { this.#o.keyboardInteractive = handler; return this }
  /** The order authentication methods are tried in. */
  authOrder(order: AuthMethodName[]): this { this.#o.authOrder = order; return this }
  /** Verify the host key against these known_hosts files. */
  knownHosts(files: string | string[], options: { acceptNew?: boolean; hash?: boolean } = {}): this {
    this.#o.hostKey = { knownHosts: files, ...options }
    return this
  }
  /** Accept only a host key with one of these SHA256 fingerprints. */
  hostKeyFingerprint(fingerprint: string | string[]): this { this.#o.hostKey = { fingerprint }; return this }
  /** Decide about the host key in a callback. */
  verifyHostKey(verify: (key: HostKeyInfo) => boolean | Promise<boolean>): this { this.#o.hostKey = { verify }; return this }
  /** Accept any host key. Only for throwaway test servers. */
  insecureAcceptAnyHostKey(): this { this.#o.hostKey = 'insecure-accept-any'; return this }
  /** Algorithms to offer (kex, cipher, mac, hostKey, compression), in OpenSSH list syntax. */
  algorithms(algorithms: AlgorithmOptions): this { this.#o.algorithms = algorithms; return this }
  /** Milliseconds for connect + handshake + authentication (0 = none). */
  connectTimeout(ms: number): this { this.#o.connectTimeout = ms; return this }
  /** Send a keepalive after `intervalMs` idle; give up after `countMax` unanswered ones (like `ServerAliveInterval`/`ServerAliveCountMax`). */
  keepalive(intervalMs: number, countMax?: number): this {
    this.#o.keepaliveInterval = intervalMs
    if (countMax !== undefined) this.#o.keepaliveCountMax = countMax
    return this
  }
  /** Channels open at once on the connection; further opens wait. */
  maxSessions(n: number): this { this.#o.maxSessions = n; return this }
  /** Aborts connecting. */
  signal(signal: AbortSignal): this { this.#o.signal = signal; return this }
  /** Any other option by name. */
  option<K extends keyof ConnectOptions>(name: K, value: ConnectOptions[K]): this { this.#o[name] = value; return this }
  /** The options built so far. */
  build(): ConnectOptions { return { ...this.#o } as ConnectOptions }
  /** Connects with the options built so far. */
  connect(): Promise<SshClient> { return connect(this.build()) }
}
