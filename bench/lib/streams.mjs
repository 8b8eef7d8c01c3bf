// Helpers shared by the stream-based peers, so each is driven exactly the same way.
import { once } from 'node:events'

/** Writes `total` bytes of `chunk` into a Writable, honouring backpressure, then ends it. */
export async function writeAll(writable, total, chunk) {
  let left = total
  while (left > 0) {
    const n = Math.min(left, chunk.length)
    left -= n
    if (!writable.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
      await Promise.race([once(writable, 'drain'), once(writable, 'close')])
    }
  }
  writable.end()
}

/** Counts the bytes a Readable delivers through 'data' until it ends. */
export function countBytes(readable) {
  return new Promise((resolve, reject) => {
    let n = 0
    readable.on('data', (d) => { n += d.length })
    readable.once('end', () => resolve(n))
    readable.once('error', reject)
  })
}
