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
  } catch (e) {
    // the abort the signal caused carries its reason, as Node's own AbortErrors do
    if (signal.aborted && e instanceof AbortError && e.cause === undefined) throw new AbortError(e.message, { cause: signal.reason })
    throw e
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}


/**
 * Wraps a native call that reports through `done(err, value)`: unlike a native promise, a
 * pending one holds the process only while its connection is ref()'d. @internal
 */
function settle<T>(start: (done: (err: Error | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((err, value) => (err ? reject(err) : resolve(value as T)))
  })
}

type Done = (err: Error | null, value?: never) => void
/** The arguments of a native call before its trailing `done`. */
type ArgsOf<F> = F extends (...args: [...infer A, infer _D]) => void ? A : never
/** What a native call hands its `done`. */
type ValueOf<F> = F extends (...args: [...infer _A, (err: Error | null, value?: infer T) => void]) => void ? T : never

/**
 * `o[method](...args, done)` as a promise of the typed result: a native call settled through
 * `done` (see `settle`), its rejection converted into the typed error. @internal
 */
export function call<O, K extends keyof O>(o: O, method: K, ...args: ArgsOf<O[K]>): Promise<ValueOf<O[K]>> {
  const fn = o[method] as unknown as (...a: unknown[]) => void
  return native(() => settle<ValueOf<O[K]>>((done) => fn.call(o, ...args, done as Done)))
}
