import binding from './native'
import type { AlgorithmOptions } from './options'

/** The crypto backend compiled into the native binding (`aws-lc-rs` or `ring`). */
export function cryptoBackend(): string {
  return binding.cryptoBackend()
}

/** Every algorithm name this build can negotiate, per list. */
export function supportedAlgorithms(): Required<{ [K in keyof AlgorithmOptions]: string[] }> {
  const a = binding.supportedAlgorithms()
  return { kex: a.kex ?? [], cipher: a.cipher ?? [], mac: a.mac ?? [], hostKey: a.hostKey ?? [], compression: a.compression ?? [] }
}
