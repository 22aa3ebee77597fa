import type { Runner } from '../scheduler/scheduler.js'

/**
 * The runners answering one deployment's requests now (its replicas), which change as runners
 * crash, restart and are replaced, and whoever queues requests for them. `unavailable` says
 * why there are none when none are coming back.
 */
export class RunnerPool<T = Runner> {
  #targets: readonly T[] = []
  #unavailable: Error | undefined
  readonly #listeners = new Set<() => void>()

  get targets(): readonly T[] {
    return this.#targets
  }

  get unavailable(): Error | undefined {
    return this.#unavailable
  }

  /**
   * Replaces the members. With none, `unavailable` is the error queued requests fail with
   * (the deployment ended); leave it out while one may come back.
   */
  set(targets: readonly T[], unavailable?: Error): void {
    this.#targets = targets
    this.#unavailable = targets.length === 0 ? unavailable : undefined
    for (const listener of [...this.#listeners]) listener()
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
