import type { Deployment } from '../domain/deployment-state.js'
import { type Model, modelKey } from '../domain/model.js'
import type { Serving } from '../inference/inference-service.js'
import type { Signature } from '../tensors/tensor.js'
import { notReady } from './deployment-readiness.js'
import type { ModelDeployment } from './model-deployment.js'

/** One deployment as the node view shows it. */
export interface DeploymentSummary {
  /** The model, with its deployment as this server sees it. */
  readonly model: Model
  /** The ids of the runners serving it. */
  readonly runners: readonly string[]
  /** The processes they run in (a shared process serves other models too). */
  readonly processes: readonly number[]
  /** What its serving runners hold resident, last measured; `undefined` when not measured. */
  readonly residentBytes: number | undefined
  /** Memory it is counted as against the node (0 when it holds no capacity). */
  readonly chargedMemoryBytes: number
  /** When a request last used it (ms since the epoch); `undefined`: never. */
  readonly lastUsed: number | undefined
  /** Requests holding it now: queued, running, or waiting for it to load. */
  readonly activeRequests: number
}

/**
 * This server's deployment of each model it was asked about (Triton's map of `ModelInfo`), and
 * what is read of them: their records, the live model, who serves it. Changing them is the
 * `ModelLifecycle`'s.
 */
export class DeploymentTable {
  readonly #deployments = new Map<string, ModelDeployment>()
  readonly #create: (model: Model) => ModelDeployment

  /** `create` makes a model's deployment the first time it is asked for. */
  constructor(create: (model: Model) => ModelDeployment) {
    this.#create = create
  }

  /** The model's deployment here, by `namespaceId/modelId`; `undefined` when never touched. */
  get(key: string): ModelDeployment | undefined {
    return this.#deployments.get(key)
  }

  /** The model's deployment here, made on first use. */
  of(model: Model): ModelDeployment {
    const key = modelKey(model)
    let d = this.#deployments.get(key)
    if (d === undefined) {
      d = this.#create(model)
      this.#deployments.set(key, d)
    }
    return d
  }

  /** Every deployment here. */
  all(): ModelDeployment[] {
    return [...this.#deployments.values()]
  }

  /** What each deployment holds, for the reservation audit (see `auditReservations`). */
  owners() {
    return this.all().map((d) => ({
      key: d.key,
      state: d.record.status.state,
      reservation: d.reservation,
      owned: d.owned,
    }))
  }

  /** Drops the model's deployment (deleted; it must be at rest). */
  forget(model: Model): void {
    this.#deployments.delete(modelKey(model))
  }

  /** The models this server manages (anything but never touched or forgotten). */
  managed(): Model[] {
    return this.all().map((d) => d.model)
  }

  deploymentOf(model: Model): Deployment {
    return this.#deployments.get(modelKey(model))?.record ?? model.deployment
  }

  liveModel(namespaceId: string, modelId: string): Model | undefined {
    return this.#deployments.get(modelKey({ namespaceId, modelId }))?.current
  }

  liveSignature(model: Model): Signature | undefined {
    return this.#deployments.get(modelKey(model))?.signature
  }

  replicasOf(model: Model): number {
    return this.#deployments.get(modelKey(model))?.pool.targets.length ?? 0
  }

  /**
   * Where each deployment of the namespaces in `namespaceIds` (all when unset) stands now, for the node view:
   * what it holds of the node, what its runners hold resident, when it was last used.
   */
  summaries(namespaceIds?: ReadonlySet<string>): DeploymentSummary[] {
    return this.all()
      .filter((d) => namespaceIds === undefined || namespaceIds.has(d.model.namespaceId))
      .map((d) => {
        const runners = d.pool.targets
        const measured = runners.map((r) => r.residentBytes())
        const reservation = d.reservation
        return {
          model: d.current,
          runners: runners.map((r) => r.id),
          processes: [...new Set(runners.flatMap((r) => (r.pid === undefined ? [] : [r.pid])))],
          residentBytes: measured.every((b) => b !== undefined)
            ? measured.reduce((sum, b) => sum + b, 0)
            : undefined,
          chargedMemoryBytes:
            reservation === undefined ? 0 : reservation.charged.memoryBytes * reservation.replicas,
          lastUsed: d.lastUsed === 0 ? undefined : d.lastUsed,
          activeRequests: d.active,
        }
      })
  }

  serving(model: Model): Serving {
    const d = this.#deployments.get(modelKey(model))
    if (d !== undefined && d.pool.targets.length > 0 && d.signature !== undefined) {
      return { model: d.model, pool: d.pool, signature: d.signature }
    }
    throw notReady(model, d?.record ?? model.deployment)
  }
}
