/**
 * ferrossh: SSH for Node.js and Electron on a native russh core.
 * @packageDocumentation
 */
export { connect, SshClient } from './client'
export type { NegotiatedAlgorithms, ShellOptions } from './client'
export { SshClientBuilder } from './builder'
export { RemoteProcess } from './exec'
export type { ExecOptions, ExecResult, ExitStatus, SpawnOptions } from './exec'
export { ChannelDuplex } from './stream'
export type { DynamicForwardOptions, Forward, LocalForwardOptions, LocalUnixForwardOptions, RemoteForwardOptions, RemoteUnixForwardOptions } from './forward'
export type { JumpHost } from './jump'
export type {
  AlgorithmOptions, AuthMethodName, ConnectOptions, HostKeyInfo, HostKeyPolicy, KeyboardInteractiveHandler, Prompt, PtyOptions, X11Options,
} from './options'
export {
  SshError, ConnectError, HostKeyError, NegotiationError, AuthError, TimeoutError, AbortError, ChannelError,
  CommandError, SftpError, ForwardError, ProxyError, DisconnectError, ConfigError,
} from './errors'
export type { AuthAttempt } from './errors'
export { cryptoBackend, supportedAlgorithms } from './info'
export { parseKey, generateKey } from './keys'
export type { KeyInfo, GeneratedKey, GenerateKeyOptions } from './keys'
export { KnownHosts, defaultKnownHostsFiles } from './known-hosts'
export { resolveConfig } from './config'
export { SftpClient, Stats, Dirent, FileHandle } from './sftp'
export type { SftpInfo, ReadResult, StatFs, TransferOptions, TransferProgress, DirTransferOptions, SftpReadStreamOptions, SftpWriteStreamOptions, SftpWriteStream, ReadOptions } from './sftp'
export type { ResolvedConfig, ResolveConfigOptions } from './config'
export type { KnownHostsEntry, KnownHostsIssue, KnownHostsCheck } from './known-hosts'
export { createServer, SshServer } from './server'
export type { ServerAddress, ServerHostKey } from './server'
export type {
  AuthContext, DirectTarget, OfferedKey, RemoteBind, ServerAuthOptions, ServerForwardingOptions, ServerLimitOptions, ServerOptions,
  ServerPrompt, ServerPrompter, SessionHandler, Verdict,
} from './server-options'
export { ServerSession } from './server-session'
export type { ServerContext, ServerPty, ServerResize } from './server-session'
