import { homedir } from 'node:os'
import { join } from 'node:path'

/** `~` and `~/…` as the shell and OpenSSH read them; other paths as given. @internal */
export function expandHome(p: string): string {
  if (p === '~') return homedir()
  if (p.startsWith('~/')) return join(homedir(), p.slice(2))
  return p
}
