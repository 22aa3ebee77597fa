import type { Logger } from 'pino'
import type { DeploymentObservation } from '../domain/deployment-state.js'
import { type ModelRef, modelKey } from '../domain/model.js'
import type { DeploymentRecords } from '../metadata/metadata-store.js'

/** The store calls a journal makes. */
export type JournalStore = Pick<DeploymentRecords, 'setDeploymentStatus'>

/**
 * One deployment's writes to the store, in the order they happened, and whoever waits for the
 * deployment to reach a state. A failed write is logged and does not stop the ones after it:
 * the next change records the whole state again.
 */
export class DeploymentJournal {
  readonly #store: JournalStore
  readonly #logger: Logger
  readonly #model: ModelRef
  #writes: Promise<void> = Promise.resolve()
  readonly #waiters = new Set<() => void>()

  constructor(deps: { readonly store: JournalStore; readonly logger: Logger }, model: ModelRef) {
    this.#store = deps.store
    this.#logger = deps.logger
    this.#model = { namespaceId: model.namespaceId, modelId: model.modelId }
  }

  /** Records where the deployment is, after every earlier write; then wakes the waiters. */
  record(observed: DeploymentObservation): void {
    this.#append(
      () => this.#store.setDeploymentStatus(this.#model.namespaceId, this.#model.modelId, observed),
      () => {
        for (const wake of [...this.#waiters]) wake()
      },
    )
  }

  /** Resolves once every write asked so far is done (or failed and was logged). */
  settled(): Promise<void> {
    return this.#writes
  }

  /**
   * Resolves when `done()` holds after a write (checked at once too), or after `timeoutMs`;
   * then once the writes so far are settled.
   */
  async waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
    if (!done()) {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (done()) finish()
        }
        const finish = () => {
          clearTimeout(timer)
          this.#waiters.delete(check)
          resolve()
        }
        const timer = setTimeout(finish, timeoutMs)
        this.#waiters.add(check)
      })
    }
    await this.#writes
  }

  #append(write: () => Promise<unknown>, after?: () => void): Promise<void> {
    const written = this.#writes.then(write).then(
      () => undefined,
      (err: unknown) => {
        this.#logger.error({ err, model: modelKey(this.#model) }, 'deployment: not recorded')
      },
    )
    this.#writes = after === undefined ? written : written.then(after)
    return written
  }
}
