import type { Model, ResourceRequirements } from '../domain/model.js'

/**
 * What a runner process holds before any model: Node and ONNX Runtime, measured at about 89 MiB
 * resident. Part of the estimate of a model never loaded yet.
 */
const RUNNER_BASE_BYTES = 96 * 1024 ** 2

/**
 * What each runner of an on-demand deployment is counted as against the node: no CPUs (they are
 * a share of the node's threads, not a cap on how many models are loaded), its GPUs, and its
 * resident memory as last measured, or before its first load an estimate (the runner's base
 * plus twice the model's files: the weights read and the runtime's copy of them); never more
 * than the `memory_gb` it is held to.
 */
export function onDemandCharge(
  model: Model,
  measuredBytes: number | undefined,
): ResourceRequirements {
  const files = model.manifest.files.reduce((sum, f) => sum + f.sizeBytes, 0)
  const estimate = RUNNER_BASE_BYTES + 2 * files
  return {
    numCpus: 0,
    numGpus: model.resources.numGpus,
    memoryBytes: Math.min(model.resources.memoryBytes, measuredBytes ?? estimate),
  }
}

/** A loaded on-demand deployment that may be evicted. */
export interface EvictionCandidate<T> {
  readonly item: T
  /** When a request last used it (ms). */
  readonly lastUsed: number
  /** The memory its eviction frees. */
  readonly bytes: number
}

/**
 * The least recently used candidates whose memory together covers `shortBytes`, oldest first;
 * `undefined` when all of them together would not (then none is worth evicting).
 */
export function pickVictims<T>(
  candidates: readonly EvictionCandidate<T>[],
  shortBytes: number,
): T[] | undefined {
  const victims: T[] = []
  let freed = 0
  for (const c of [...candidates].sort((a, b) => a.lastUsed - b.lastUsed)) {
    if (freed >= shortBytes) break
    victims.push(c.item)
    freed += c.bytes
  }
  return freed >= shortBytes ? victims : undefined
}
