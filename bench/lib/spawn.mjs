// Runs one measurement child with a hard timeout. Each child is the leader of its own process
// group so a timeout (or Ctrl-C of the whole bench) also takes down anything it started, such as
// the OpenSSH driver's ssh processes.
import { spawn } from 'node:child_process'

const active = new Set()

/** Kills every running child's process group; used when the bench itself is interrupted. */
export function killAllChildren() {
  for (const child of active) killGroup(child)
}

function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * Resolves { result } with the JSON object the child printed last on stdout, or
 * { error } with the reason it failed (exit status, timeout, no JSON) and its stderr tail.
 */
export function runChild(file, args, { timeoutMs, env } = {}) {
  return new Promise((resolve) => {
    const child = spawn(file, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    })
    active.add(child)
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.setEncoding('utf8').on('data', (d) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d) => { stderr = stderr.length > 64_000 ? stderr : stderr + d })
    const timer = setTimeout(() => {
      timedOut = true
      killGroup(child)
    }, timeoutMs)
    const finish = (code, signal, spawnError) => {
      clearTimeout(timer)
      active.delete(child)
      const tail = excerpt(stderr)
      if (spawnError) return resolve({ error: `could not start ${file}: ${spawnError.message}` })
      if (timedOut) return resolve({ error: `timed out after ${timeoutMs / 1000} s${tail ? `\n${tail}` : ''}` })
      const result = lastJsonLine(stdout)
      if (code !== 0 || !result) {
        const why = code !== 0 ? `exited with ${code ?? signal}` : 'printed no result'
        return resolve({ error: `${why}${tail ? `\n${tail}` : ''}` })
      }
      resolve({ result })
    }
    child.on('error', (e) => finish(null, null, e))
    child.on('close', (code, signal) => finish(code, signal))
  })
}

/** The start (where the error message is) and the end of a child's stderr. */
function excerpt(stderr) {
  const lines = stderr.trim().split('\n')
  if (lines.length <= 8) return lines.join('\n')
  return [...lines.slice(0, 4), '    …', ...lines.slice(-3)].join('\n')
}

function lastJsonLine(text) {
  const lines = text.trim().split('\n').reverse()
  for (const line of lines) {
    if (!line.startsWith('{')) continue
    try {
      return JSON.parse(line)
    } catch {
      // not the result line
    }
  }
  return null
}
