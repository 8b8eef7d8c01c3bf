import { AbortError, ConfigError, native } from './errors'
import binding from './native'

/** Runs `fn` with a native cancel token tied to `signal`. @internal */
export async function withSignal<T>(signal: AbortSignal | undefined, fn: (cancel?: InstanceType<typeof binding.NativeCancel>) => Promise<T>): Promise<T> {
  if (!signal) return native(() => fn(undefined))
  if (!(signal instanceof AbortSignal)) throw new ConfigError('signal: must be an AbortSignal', { option: 'signal' })
  if (signal.aborted) throw new AbortError(undefined, { cause: signal.reason })
  const cancel = new binding.NativeCancel()
  const onAbort = (): void => cancel.cancel()
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await native(() => fn(cancel))
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}


/**
 * Wraps a native call that reports through `done(err, value)`: unlike a native promise, a
 * pending one holds the process only while its connection is ref()'d. @internal
 */
export function settle<T>(start: (done: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)))
  })
}
