// Helpers shared by the stream-based peers, so each is driven exactly the same way.

/** Writes `total` bytes of `chunk` into a Writable, honouring backpressure, then ends it. */
export async function writeAll(writable, total, chunk) {
  let left = total
  while (left > 0) {
    const n = Math.min(left, chunk.length)
    left -= n
    if (!writable.write(n === chunk.length ? chunk : chunk.subarray(0, n))) await drainOrClose(writable)
  }
  writable.end()
}

/**
 * Resolves on 'drain' or 'close', whichever comes first, and leaves no listener behind
 * (`Promise.race` of two `once()` calls would leave one per wait, until close).
 */
function drainOrClose(writable) {
  return new Promise((resolve) => {
    const done = () => {
      writable.off('drain', done)
      writable.off('close', done)
      resolve()
    }
    writable.on('drain', done)
    writable.on('close', done)
  })
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
