// What the SFTP workloads need besides the sshd, set up once per run by the harness: the file to
// transfer (in the test user's home; the server is this machine). The forward's byte source and
// sink are in sink.mjs.
import { closeSync, chownSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const MiB = 1024 * 1024

/** One MiB of random bytes, repeated: nothing on the way can shortcut zeros. */
function block() {
  return randomFillSync(Buffer.allocUnsafe(MiB))
}

/**
 * Writes `bytes` to `<home>/ferrossh-bench-sftp-<pid>.bin`, owned by the home's owner (the test
 * user), plus a local directory for downloaded copies. Both go away with remove().
 */
export function prepareSftpFiles(home, bytes) {
  const { uid, gid } = statSync(home)
  const sftpFile = join(home, `ferrossh-bench-sftp-${process.pid}.bin`)
  const buf = block()
  const fd = openSync(sftpFile, 'w', 0o644)
  try {
    for (let left = bytes; left > 0; left -= buf.length) writeSync(fd, buf, 0, Math.min(left, buf.length))
  } finally {
    closeSync(fd)
  }
  chownSync(sftpFile, uid, gid)
  const localDir = mkdtempSync(join(tmpdir(), 'ferrossh-bench-'))
  return {
    sftpFile,
    localDir,
    remove() {
      rmSync(sftpFile, { force: true })
      rmSync(localDir, { recursive: true, force: true })
    },
  }
}

/**
 * Throws unless `copy` matches `original` in 16 blocks of 4 KiB spread over the file (first and
 * last included): cheap, and enough to catch a chunk written at the wrong offset.
 */
export function checkSamples(original, copy, size) {
  const a = openSync(original, 'r')
  const b = openSync(copy, 'r')
  try {
    const x = Buffer.alloc(4096)
    const y = Buffer.alloc(4096)
    for (let i = 0; i < 16; i++) {
      const at = Math.max(0, Math.min(size - 4096, Math.floor((i / 15) * (size - 4096))))
      const n = readSync(a, x, 0, 4096, at)
      if (readSync(b, y, 0, 4096, at) !== n || !x.subarray(0, n).equals(y.subarray(0, n))) {
        throw new Error(`${copy} differs from ${original} near byte ${at}`)
      }
    }
  } finally {
    closeSync(a)
    closeSync(b)
  }
}
