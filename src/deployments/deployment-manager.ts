import { type CrashHook, noCrash } from '../domain/crash-points.js'
import { type Deployment, desiredFor, isServed, isSettled } from '../domain/deployment-state.js'
import { type Model, type ModelRef, modelKey } from '../domain/model.js'
import type { Acquired, Serving, ServingLookup } from '../inference/inference-service.js'
import type {
  DeploymentRecords,
  DesiredStateRow,
  ModelRecords,
} from '../metadata/metadata-store.js'
import type { Scheduler } from '../scheduler/scheduler.js'
import type { Signature } from '../tensors/tensor.js'
import type { DeploymentControl, DeployOptions, NodeView } from './deployment-control.js'
import { ModelLifecycle } from './model-lifecycle.js'
import type { ModelLifecycleDeps, ModelLifecycleOptions } from './model-lifecycle-options.js'
import type { ReservationAudit } from './reservation-audit.js'

export type DeploymentManagerOptions = ModelLifecycleOptions

export interface DeploymentManagerDeps extends ModelLifecycleDeps {
  readonly metadata: DeploymentRecords & Pick<ModelRecords, 'findModel'>
}

/** What following the store needs besides the deployments: the model's files on this server. */
export interface FollowHooks {
  /** Gets the model's files onto this server (uploaded elsewhere: fetched and unpacked). */
  readonly install: (model: Model) => Promise<void>
  /** Removes this server's files of a model deleted elsewhere. */
  readonly forget: (model: Model) => Promise<void>
}

/** What following the store did to one model here. */
export type Followed =
  | 'deployed'
  /** Served on demand here too (loaded on its first request). */
  | 'on_demand'
  | 'redeployed'
  | 'undeployed'
  | 'removed'
  | 'adopted'
  | 'unchanged'
  /** A request for the model was being carried out: left for the next pass. */
  | 'busy'

/**
 * What should be deployed (Triton's `ModelRepositoryManager`): deploy and undeploy requests are
 * recorded in the store as the model's desired state (and a redeploy as a new generation), then
 * carried out by the `ModelLifecycle`; `follow` brings this server in line with what the store
 * wants when another instance was asked. Requests and follows act on one model one at a time.
 */
export class DeploymentManager implements DeploymentControl, ServingLookup {
  readonly #metadata: DeploymentManagerDeps['metadata']
  readonly #lifecycle: ModelLifecycle
  readonly #crash: CrashHook
  readonly #scheduler: Pick<Scheduler, 'usage'>
  /** Per model, the end of the last request or follow acting on it. */
  readonly #turns = new Map<string, Promise<void>>()

  constructor(deps: DeploymentManagerDeps, options: DeploymentManagerOptions) {
    this.#metadata = deps.metadata
    this.#crash = deps.crash ?? noCrash
    this.#scheduler = deps.scheduler
    this.#lifecycle = new ModelLifecycle(deps, options)
  }

  /**
   * Brings the store's deployments in line with a server that runs nothing yet: what should be
   * deployed is admitted again, whatever was half-done is set to rest. Run once, at start.
   */
  async reconcile(): Promise<void> {
    // Read first: the runners about to load are of this redeploy generation or a newer one (a
    // newer one than recorded here only costs one redeploy more when following).
    const rows = await this.#metadata.listDesiredStates()
    await this.#lifecycle.reconcile()
    for (const row of rows) {
      const d = this.#lifecycle.table.get(modelKey(row))
      if (d !== undefined && d.model.uploadId === row.uploadId) d.generation ??= row.generation
    }
  }

  deploy(
    model: Model,
    options: DeployOptions = {},
  ): Promise<{ deployment: Deployment; cached: boolean }> {
    this.#assertOpen()
    return this.#exclusive(model, async () => {
      const { namespaceId, modelId } = model
      // Written even when unchanged here: another instance may have written the opposite.
      const desired = desiredFor(model.serving.loadPolicy)
      await this.#metadata.setDesiredState(namespaceId, modelId, desired)
      this.#crash('deploy_recorded')
      // A redeploy: every other instance serving an older generation redeploys too.
      const reload = options.reload === true
      const generation = reload
        ? await this.#metadata.bumpDeployGeneration(namespaceId, modelId)
        : undefined
      return this.#lifecycle.deploy(model, reload, generation, desired)
    })
  }

  undeploy(model: Model): Promise<Deployment> {
    this.#assertOpen()
    return this.#exclusive(model, () => this.#undeploy(model))
  }

  remove(model: Model): Promise<void> {
    this.#assertOpen()
    return this.#exclusive(model, async () => {
      await this.#undeploy(model)
      this.#lifecycle.forget(model)
    })
  }

  /** The reservation invariant, checked now (see `auditReservations`). */
  auditReservations(): ReservationAudit {
    return this.#lifecycle.auditReservations()
  }

  /** The models this server manages (anything but never touched or forgotten). */
  managed(): Model[] {
    return this.#lifecycle.table.managed()
  }

  /**
   * Whether this server's deployment of a model may differ from the stored desired state (`row`;
   * `undefined`: the model is not in the store). A cheap check on a listing that may be stale:
   * `follow` reads the model again before acting.
   */
  differs(ref: ModelRef, row: DesiredStateRow | undefined): boolean {
    const d = this.#lifecycle.table.get(modelKey(ref))
    if (row === undefined) return d !== undefined
    // Deleted and uploaded again under the same id: another model.
    if (d !== undefined && d.model.uploadId !== row.uploadId) return true
    const wanted = d?.record.desired ?? 'not_deployed'
    if (row.desired !== wanted) return true
    return wanted !== 'not_deployed' && (d?.generation ?? -1) < row.generation
  }

  /**
   * Level-triggered following (as a Kubernetes controller does): reads the model's stored desired
   * state afresh and brings this server's deployment in line with it: deploys (after `install`),
   * redeploys a newer `generation`, undeploys, or forgets a model deleted (or replaced by a new
   * upload) elsewhere. `row` is the model in the listing, `undefined` when it was not there. It
   * acts in the model's turn, after reading it again there, so a stale listing never undoes a
   * newer request here; a model whose turn is taken (a request is being carried out) is left for
   * the next pass (`busy`), so following never waits behind requests. The model's files are
   * fetched before its turn: a long download holds up no request.
   */
  async follow(
    ref: ModelRef,
    row: DesiredStateRow | undefined,
    hooks: FollowHooks,
  ): Promise<Followed> {
    const here = this.#lifecycle.table.get(modelKey(ref))
    let fetched: string | undefined
    const wanted = row !== undefined && isServed(row.desired)
    if (wanted && (here?.record.desired !== row.desired || here.model.uploadId !== row.uploadId)) {
      const model = await this.#metadata.findModel(ref.namespaceId, ref.modelId)
      if (model !== undefined && isServed(model.deployment.desired)) {
        await hooks.install(model)
        fetched = model.uploadId
      }
    }
    if (this.#turns.has(modelKey(ref))) return 'busy'
    // The generation only grows: a stale listing can only under-report it.
    return this.#exclusive(ref, () => this.#converge(ref, row?.generation, fetched, hooks))
  }

  /** `follow`, in the model's turn. */
  async #converge(
    ref: ModelRef,
    generation: number | undefined,
    fetched: string | undefined,
    hooks: FollowHooks,
  ): Promise<Followed> {
    if (this.#lifecycle.closed) return 'unchanged'
    const fresh = await this.#metadata.findModel(ref.namespaceId, ref.modelId)
    let d = this.#lifecycle.table.get(modelKey(ref))
    let removed = false
    if (d !== undefined && (fresh === undefined || fresh.uploadId !== d.model.uploadId)) {
      await this.#lifecycle.undeploy(d.model)
      this.#lifecycle.forget(d.model)
      await hooks.forget(d.model)
      d = undefined
      removed = true
    }
    if (fresh === undefined) return removed ? 'removed' : 'unchanged'
    const here = d?.record.desired ?? 'not_deployed'
    const desired = fresh.deployment.desired
    if (desired === 'not_deployed') {
      if (!isServed(here) || d === undefined) return removed ? 'removed' : 'unchanged'
      await this.#lifecycle.undeploy(d.model)
      return 'undeployed'
    }
    if (here !== desired || d === undefined) {
      // Fetched before this turn, unless another upload took its place meanwhile.
      if (fresh.uploadId !== fetched) await hooks.install(fresh)
      if (desired === 'on_demand') {
        // Served here too, loaded on its first request here.
        this.#lifecycle.serveOnDemand(fresh, generation)
        return 'on_demand'
      }
      await this.#lifecycle.deploy(fresh, false, generation, desired)
      return 'deployed'
    }
    if (generation === undefined) return 'unchanged'
    if (d.generation === undefined) {
      // Deployed here before its generation was known (at start): these runners are current.
      d.generation = generation
      return 'adopted'
    }
    if (generation <= d.generation) return 'unchanged'
    if (desired === 'on_demand' && d.record.status.state !== 'deployed') {
      // At rest here: its next load here takes the new settings; nothing to redeploy.
      this.#lifecycle.serveOnDemand(fresh, generation)
      return 'unchanged'
    }
    await this.#lifecycle.deploy(fresh, true, generation, desired)
    return 'redeployed'
  }

  deploymentOf(model: Model): Deployment {
    return this.#lifecycle.table.deploymentOf(model)
  }

  liveModel(namespaceId: string, modelId: string): Model | undefined {
    return this.#lifecycle.table.liveModel(namespaceId, modelId)
  }

  liveSignature(model: Model): Signature | undefined {
    return this.#lifecycle.table.liveSignature(model)
  }

  replicasOf(model: Model): number {
    return this.#lifecycle.table.replicasOf(model)
  }

  nodeView(namespaceIds?: ReadonlySet<string>): NodeView {
    return {
      usage: this.#scheduler.usage(),
      deployments: this.#lifecycle.table.summaries(namespaceIds),
    }
  }

  pinnedSettled(): boolean {
    return this.#lifecycle.table
      .all()
      .every((d) => d.record.desired !== 'deployed' || isSettled(d.record))
  }

  waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment> {
    return this.#lifecycle.waitUntilSettled(model, timeoutMs)
  }

  serving(model: Model): Serving {
    return this.#lifecycle.table.serving(model)
  }

  acquire(model: Model, timeoutMs: number): Promise<Acquired> {
    return this.#lifecycle.acquire(model, timeoutMs)
  }

  /** Stops every runner (the store keeps what should be deployed, for the next start). */
  close(): Promise<void> {
    return this.#lifecycle.close()
  }

  /** Runs `work` after every earlier request or follow for the model has finished. */
  #exclusive<T>(ref: ModelRef, work: () => Promise<T>): Promise<T> {
    const key = modelKey(ref)
    const result = (this.#turns.get(key) ?? Promise.resolve()).then(work)
    const turn = result.then(
      () => undefined,
      () => undefined,
    )
    this.#turns.set(key, turn)
    void turn.then(() => {
      if (this.#turns.get(key) === turn) this.#turns.delete(key)
    })
    return result
  }

  /** An undeploy, in the model's turn: recorded as wanted, then carried out. */
  async #undeploy(model: Model): Promise<Deployment> {
    await this.#metadata.setDesiredState(model.namespaceId, model.modelId, 'not_deployed')
    this.#crash('undeploy_recorded')
    return this.#lifecycle.undeploy(model)
  }

  #assertOpen(): void {
    this.#lifecycle.assertOpen()
  }
}
