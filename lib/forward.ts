import type { ConnectOptions } from './options'

/** Options of {@link SshClient.forwardLocal} (`ssh -L`). */
export interface LocalForwardOptions {
  /** Local address to listen on (default 127.0.0.1). */
  localHost?: string
  /** Local port (0 or omitted: any free port, reported as `localPort`). */
  localPort?: number
  /** Host the server connects to. */
  remoteHost?: string
  /** Port the server connects to. */
  remotePort?: number
  /** A Unix socket on the server to connect to instead of remoteHost/remotePort. */
  remotePath?: string
}

/** Options of {@link SshClient.forwardLocalUnix}: a local Unix socket listener. */
export interface LocalUnixForwardOptions {
  /** Path of the local socket to create. */
  localPath: string
  /** Host the server connects to. */
  remoteHost?: string
  /** Port the server connects to. */
  remotePort?: number
  /** A Unix socket on the server to connect to. */
  remotePath?: string
}

/** Options of {@link SshClient.forwardRemote} (`ssh -R`). */
export interface RemoteForwardOptions {
  /** Address the server listens on (default `localhost`; others need GatewayPorts). */
  remoteHost?: string
  /** Port the server listens on (0: any, reported as `remotePort`). */
  remotePort?: number
  /** Local host connections go to (default 127.0.0.1). */
  localHost?: string
  /** Local port connections go to. */
  localPort?: number
  /** A local Unix socket connections go to instead. */
  localPath?: string
}

/** Options of {@link SshClient.forwardRemoteUnix}: the server listens on a Unix socket. */
export interface RemoteUnixForwardOptions {
  /** Path of the socket on the server. */
  remotePath: string
  /** Local host connections go to (default 127.0.0.1). */
  localHost?: string
  /** Local port connections go to. */
  localPort?: number
  /** A local Unix socket connections go to instead. */
  localPath?: string
}

/** Options of {@link SshClient.forwardDynamic} (`ssh -D`, a SOCKS 4/4a/5 proxy). */
export interface DynamicForwardOptions {
  /** Local address to listen on (default 127.0.0.1). */
  localHost?: string
  /** Local port (0 or omitted: any free port). */
  localPort?: number
}

/** A running forward; `close()` stops it and the connections it carries. */
export interface Forward {
  /** The local port listened on (local and dynamic forwards). */
  readonly localPort?: number
  /** The local address listened on. */
  readonly localAddress?: string
  /** The local socket listened on (Unix-socket forwards). */
  readonly localPath?: string
  /** The port the server listens on (remote forwards). */
  readonly remotePort?: number
  /** Stops the forward and ends its connections. */
  close(): Promise<void>
}

/** @internal */
export type { ConnectOptions }
