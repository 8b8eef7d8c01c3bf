// CPU time of the loopback sshd and everything it starts (session processes, the commands they
// run), counted by a cgroup of its own: sshd's session processes outlive their parent or are
// re-parented, so per-process rusage would miss them; a cgroup counts every task that ever ran in
// it. Needs root (the bench's machine); elsewhere the column is left empty.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const V1 = '/sys/fs/cgroup/cpuacct'
const V2 = '/sys/fs/cgroup'

/**
 * Moves `pid` (before it forks anything) into a new cgroup. Returns { cpuS(), remove() } or
 * { reason } when no cgroup can be made here.
 */
export function serverCpuMeter(pid, name = `ferrossh-bench-sshd-${process.pid}`) {
  const tries = [
    { dir: join(V1, name), ok: existsSync(join(V1, 'cpuacct.usage')), read: (d) => Number(readFileSync(join(d, 'cpuacct.usage'), 'utf8')) / 1e9 },
    {
      dir: join(V2, name),
      ok: existsSync(join(V2, 'cgroup.controllers')),
      read: (d) => Number(/usage_usec (\d+)/.exec(readFileSync(join(d, 'cpu.stat'), 'utf8'))?.[1]) / 1e6,
    },
  ]
  let reason = 'no cgroup filesystem with CPU accounting'
  for (const t of tries.filter((x) => x.ok)) {
    try {
      mkdirSync(t.dir)
      writeFileSync(join(t.dir, 'cgroup.procs'), String(pid))
      return {
        cpuS: () => t.read(t.dir),
        remove: () => {
          try {
            rmdirSync(t.dir)
          } catch {
            // a task still in it (sshd not stopped yet): left for the system to clean
          }
        },
      }
    } catch (e) {
      reason = `cannot make a cgroup for sshd (${e.code ?? e.message}); run the bench as root`
      try {
        rmdirSync(t.dir)
      } catch {
        // never made
      }
    }
  }
  return { reason }
}

/** The meter's reading once it has stopped moving (sessions torn down), at most `timeoutMs` later. */
export async function settledCpu(meter, timeoutMs = 2000) {
  const end = Date.now() + timeoutMs
  let last = meter.cpuS()
  for (;;) {
    await new Promise((r) => setTimeout(r, 50))
    const now = meter.cpuS()
    if (now - last < 0.001 || Date.now() > end) return now
    last = now
  }
}
