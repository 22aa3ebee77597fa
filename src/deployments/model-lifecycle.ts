import { type Clock, systemClock } from '../domain/clock.js'
import {
  type Deployment,
  type DeploymentReason,
  type DesiredState,
  isServed,
  isSettled,
  restartedDeployment,
  type ServedState,
} from '../domain/deployment-state.js'
import { type Model, modelKey } from '../domain/model.js'
import { type ServingPlan, servingPlan } from '../domain/serving-plan.js'
import { BerthError } from '../errors/berth-error.js'
import type { Acquired } from '../inference/inference-service.js'
import type { Reservation } from '../scheduler/scheduler.js'
import { AdmissionQueue } from './admission-queue.js'
import { DeploymentJournal } from './deployment-journal.js'
import { notReady } from './deployment-readiness.js'
import { DeploymentTable } from './deployment-table.js'
import { FailureHandling } from './failure-handling.js'
import { ModelDeployment } from './model-deployment.js'
import type { ModelLifecycleDeps, ModelLifecycleOptions } from './model-lifecycle-options.js'
import { OnDemand } from './on-demand.js'
import { auditReservations, type ReservationAudit } from './reservation-audit.js'
import { RestartPolicy } from './restart-policy.js'

/**
 * The life of each model's deployment on this server (Triton's `ModelLifeCycle`): the state
 * machine driven by deploys, undeploys and what runners do. The parts: a `ModelDeployment` per
 * model (its runners, capacity, epoch and journal of recorded states), the `AdmissionQueue`
 * (capacity, in request order), the `RestartPolicy` (backoff and budget) and the domain's table
 * of runner failures. This class decides when each part acts: start, restart, give up, and swap
 * runners (a redeploy loads the new runners before the old ones stop). What should be deployed
 * is for the `DeploymentManager` to say.
 */
export class ModelLifecycle {
  readonly #deps: ModelLifecycleDeps
  readonly #options: ModelLifecycleOptions
  readonly #clock: Clock
  readonly #policy: RestartPolicy
  readonly #queue: AdmissionQueue<ModelDeployment>
  /** Each model's deployment here, and what is read of them. */
  readonly table: DeploymentTable
  #closed = false
  /** Loads and redeploys in progress: `close()` waits for them. */
  readonly #flows = new Set<Promise<void>>()
  /** Capacity a redeploy holds for its new runners until it hands it to the deployment. */
  readonly #redeploying = new Set<Reservation>()
  readonly #onDemand: OnDemand
  readonly #failures: FailureHandling
  /** Uploads whose model was deleted: a request that looked one up before must not revive it. */
  readonly #forgotten = new Set<string>()
  /** Deployed models whose redeploy waits for capacity, their old runners serving meanwhile. */
  readonly #redeploysWaiting = new Set<ModelDeployment>()

  constructor(deps: ModelLifecycleDeps, options: ModelLifecycleOptions) {
    this.#deps = deps
    this.#options = options
    this.#clock = options.clock ?? systemClock
    this.#policy = new RestartPolicy({
      maxRestarts: options.maxRestarts,
      backoffMs: options.restartBackoffMs,
      maxBackoffMs: options.maxRestartBackoffMs ?? 30_000,
      resetAfterMs: options.restartResetMs ?? 60_000,
      maxReplaces: options.maxReplaces ?? 10,
    })
    this.#queue = new AdmissionQueue(deps.scheduler)
    // A node more (or less): what waits for room may fit now, or never.
    deps.scheduler.onResize?.(() => this.#admitPending())
    const { metadata, logger } = deps
    this.table = new DeploymentTable(
      (model) =>
        new ModelDeployment(model, {
          scheduler: deps.scheduler,
          journal: new DeploymentJournal({ store: metadata, logger }, model),
          clock: this.#clock,
          metrics: deps.metrics,
          logger,
          loadTimeoutMs: options.loadTimeoutMs,
          warmUp: options.warmUp ?? true,
          archiveSource: deps.archiveSource,
        }),
    )
    this.#failures = new FailureHandling({
      policy: this.#policy,
      clock: this.#clock,
      metrics: deps.metrics,
      logger: deps.logger,
      fail: (d, reason, message) => this.#fail(d, reason, message),
      restart: (d, epoch) => {
        if (this.#closed) return
        this.#track(this.#load(d, epoch, this.#planFor(d.model), 'restarting'))
      },
      closed: () => this.#closed,
    })
    this.#onDemand = new OnDemand({
      table: this.table,
      clock: this.#clock,
      metrics: deps.metrics,
      idleTimeoutMs: options.idleTimeoutMs ?? 0,
      drainMs: options.drainMs,
      load: (d, reason) => {
        this.#toPending(d, reason)
        this.#admitPending()
      },
      admit: () => this.#admitPending(),
      released: () => {
        if (this.#queue.size > 0) this.#admitPending()
      },
      rest: (d) => {
        this.#queue.remove(d)
        d.moveTo('not_deployed', 'on_demand', null)
      },
      forgotten: (uploadId) => this.#forgotten.has(uploadId),
      track: (flow) => this.#track(flow),
      closed: () => this.#closed,
    })
  }

  /**
   * The runners serving the model, for one request (see `OnDemand.acquire`): an on-demand model
   * at rest is loaded first. Throws `model_not_ready`, `server_shutting_down`.
   */
  acquire(model: Model, timeoutMs: number): Promise<Acquired> {
    this.assertOpen()
    return this.#onDemand.acquire(model, timeoutMs)
  }

  get closed(): boolean {
    return this.#closed
  }

  /**
   * Checks the reservation invariant (see `auditReservations`) against what the scheduler
   * holds. Once closing, runners are being ended and only leaks are counted.
   */
  auditReservations(): ReservationAudit {
    const audit = auditReservations(
      this.#deps.scheduler.held(),
      this.table.owners(),
      this.#redeploying,
    )
    return this.#closed ? { ...audit, misheld: [] } : audit
  }

  /**
   * Brings the store's deployments in line with a server that runs nothing yet: what should be
   * deployed is admitted again, whatever was half-done is set to rest. Run once, at start.
   */
  async reconcile(): Promise<void> {
    for (const model of await this.#deps.metadata.listModelsToReconcile()) {
      const d = this.table.of(model)
      // A failed deployment stays failed until someone deploys it again (known here, so
      // following the store does not start it either).
      if (model.deployment.status.state === 'failed') continue
      d.reset(restartedDeployment(d.record, new Date(this.#clock.now())))
      if (d.record.status.state === 'pending') this.#queue.enqueue(d)
    }
    this.#admitPending()
  }

  async waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment> {
    const d = this.table.get(modelKey(model))
    if (d === undefined) return model.deployment
    await d.journal.waitFor(() => isSettled(d.record), timeoutMs)
    return d.record
  }

  /** Stops every runner (the store keeps what should be deployed, for the next start). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    const shutdown = new BerthError('server_shutting_down', 'the server is shutting down')
    await Promise.all(
      this.table.all().map(async (d) => {
        d.supersede()
        await d.stopAll(0, shutdown)
        await d.journal.settled()
      }),
    )
    await Promise.allSettled([...this.#flows])
  }

  #track(promise: Promise<void>): void {
    this.#flows.add(promise)
    const forget = () => this.#flows.delete(promise)
    promise.then(forget, forget)
  }

  /** Starts what fits, in request order; records why the others wait or can never start. */
  #admitPending(): void {
    if (this.#closed) return
    // Shares of shared processes shift as models come and go: count them as they are now.
    if (this.#queue.size > 0) this.#onDemand.refreshCharges()
    for (const d of this.#queue.waiting()) {
      if (d.record.status.state !== 'pending') {
        this.#queue.remove(d)
        continue
      }
      const plan = this.#planFor(d.model)
      if ('notServable' in plan) {
        this.#queue.remove(d)
        d.moveTo('failed', 'model_not_servable', plan.notServable)
        continue
      }
      const { admission, evicting } = this.#onDemand.reserve(
        this.#queue,
        d,
        d.model.serving.replicas,
      )
      if (admission.kind === 'waits') {
        const reason = evicting ? 'making_room' : admission.reason
        const message = evicting
          ? `${admission.message}: unloading idle on-demand models`
          : admission.message
        if (d.record.status.reason !== reason || d.record.message !== message) {
          d.moveTo('pending', reason, message)
        }
        continue
      }
      this.#queue.remove(d)
      if (admission.kind === 'never') {
        d.moveTo('failed', admission.reason, admission.message)
        continue
      }
      d.hold(admission.reservation)
      this.#track(this.#load(d, d.epoch, plan, 'loading_model'))
    }
    const retry = [...this.#redeploysWaiting]
    this.#redeploysWaiting.clear()
    for (const d of retry) {
      if (!isServed(d.record.desired)) continue
      const { state } = d.record.status
      if (state === 'deployed') this.#track(this.#redeploy(d))
      // A replica restarting meanwhile: the redeploy is still owed.
      else if (state === 'loading') this.#redeploysWaiting.add(d)
    }
  }

  /**
   * Starts the replicas the deployment's reservation lacks and loads the model in them; then
   * serves them beside any already serving.
   */
  async #load(d: ModelDeployment, epoch: number, plan: ServingPlan, reason: DeploymentReason) {
    const reservation = d.reservation
    if ('notServable' in plan || reservation === undefined) return
    const missing = d.missing
    if (missing <= 0) return
    // With replicas still serving, the deployment stays `deployed` while one comes back; a
    // restart is `loading` already, saying why it restarts, until its runners are up.
    if (d.pool.targets.length === 0 && d.record.status.state !== 'loading') {
      d.moveTo('loading', reason, null)
    }
    const superseded = () => epoch !== d.epoch || this.#closed
    try {
      const loaded = await d.startReplicas(reservation, plan, missing, superseded)
      if (loaded !== undefined) {
        this.#deps.crash?.('deploy_loaded')
        d.serve(loaded, (runner, end) => this.#failures.runnerEnded(d, runner, end))
        this.#onDemand.served(d)
        // Measured, it may hold less than it was admitted with: room for who waits.
        this.#admitPending()
      }
    } catch (err) {
      if (superseded()) return
      this.#failures.loadFailed(d, err)
    }
  }

  /** Ends the deployment as `failed`, releasing what it held. */
  #fail(d: ModelDeployment, reason: DeploymentReason, message: string): void {
    d.supersede()
    d.moveTo('failed', reason, message)
    for (const runner of d.takeRunners(notReady(d.model, d.record))) void runner.stop(0)
    d.release()
    this.#admitPending()
  }

  /**
   * Loads fresh runners (as many replicas as now wanted) beside the serving ones, then swaps
   * them and stops the old. When the node has no room for the new set, the old one serves on
   * and the redeploy is tried again whenever capacity frees.
   */
  async #redeploy(d: ModelDeployment): Promise<void> {
    const plan = this.#planFor(d.model)
    if ('notServable' in plan || d.pool.targets.length === 0) return
    const replicas = d.model.serving.replicas
    const { admission: extra, evicting: making } = this.#onDemand.reserve(this.#queue, d, replicas)
    if (extra.kind !== 'admitted') {
      // The serving runners go on serving: the new set waits for room (tried again whenever
      // capacity frees), or can never be placed.
      const reason = extra.kind === 'never' ? extra.reason : making ? 'making_room' : extra.reason
      const why =
        extra.kind === 'never'
          ? `the redeploy can never be placed (${extra.message}); the current runners serve on`
          : `the redeploy waits for capacity (${extra.message}); the current runners serve meanwhile`
      if (d.record.status.reason !== reason || d.record.message !== why) {
        d.moveTo('deployed', reason, why)
      }
      if (extra.kind === 'waits') this.#redeploysWaiting.add(d)
      return
    }
    const epoch = d.epoch
    d.moveTo('loading', 'redeploying', null)
    // The new runners' capacity is this flow's until the swap hands it to the deployment.
    const reservation = extra.reservation
    this.#redeploying.add(reservation)
    const dropReservation = () => {
      if (this.#redeploying.delete(reservation)) reservation.release()
    }
    const superseded = () => epoch !== d.epoch || this.#closed
    try {
      const loaded = await d.startReplicas(reservation, plan, replicas, superseded)
      if (loaded === undefined) {
        dropReservation()
        this.#admitPending()
        return
      }
      this.#redeploying.delete(reservation)
      await d.swapTo(loaded, reservation, this.#options.drainMs, (runner, end) =>
        this.#failures.runnerEnded(d, runner, end),
      )
      this.#onDemand.served(d)
      // The old runners' capacity is free (a deployment may also have shrunk): admit who waits.
      this.#admitPending()
    } catch (err) {
      dropReservation()
      this.#admitPending()
      if (superseded()) return
      // The old runners still serve: stay deployed, and say why the new ones did not come up.
      const message = err instanceof Error ? err.message : String(err)
      if (d.pool.targets.length > 0) {
        d.moveTo('deployed', 'ready', `redeploy failed: ${message}`)
        this.#onDemand.armIdle(d)
      } else this.#failures.loadFailed(d, err)
    }
  }

  /** Undeploy: stop everything the deployment runs, release its capacity, rest. */
  async #stop(d: ModelDeployment): Promise<void> {
    d.supersede()
    this.#redeploysWaiting.delete(d)
    this.#queue.remove(d)
    const { state, reason } = d.record.status
    if (state === 'not_deployed' && reason !== 'undeployed') {
      // At rest (never deployed, idle, evicted): now not served either.
      d.reset({ ...d.record, status: { ...d.record.status, reason: 'undeployed' }, message: null })
    }
    if (state === 'not_deployed' || state === 'unloading') return
    if (state === 'failed' || state === 'pending') {
      // Idempotent: nothing should be held here, and if anything is, it is not kept.
      d.release()
      d.moveTo('not_deployed', 'undeployed', null)
      return
    }
    d.moveTo('unloading', 'unload_requested', null)
    await d.stopAll(this.#options.drainMs, notReady(d.model, d.record))
    d.moveTo('not_deployed', 'undeployed', null)
    this.#admitPending()
  }

  #toPending(d: ModelDeployment, reason: DeploymentReason): void {
    d.restarts = { restarts: 0, readySince: undefined }
    d.moveTo('pending', reason, null)
    this.#queue.enqueue(d)
  }

  #planFor(model: Model): ServingPlan {
    return servingPlan(model, this.#deps.modelDir(model))
  }

  /**
   * Deploys the model (the caller recorded that it is wanted, as `desired`: kept loaded, or on
   * demand): starts it, starts it again after `failed`, or with `reload` redeploys it.
   * `generation`: the redeploy generation it is then at. Resolves once the change is recorded,
   * with the deployment as it then stood.
   */
  async deploy(
    model: Model,
    reload: boolean,
    generation: number | undefined,
    desired: ServedState = 'deployed',
  ): Promise<{ deployment: Deployment; cached: boolean }> {
    this.assertOpen()
    const d = this.table.of(model)
    // The caller's record is the latest (e.g. new serving settings for the next runners).
    d.model = { ...model, deployment: d.record }
    this.#want(d, desired)
    this.#onDemand.armIdle(d)
    const state = d.record.status.state
    // A redeploy asked while runners are loading is not carried out: the generation stays
    // behind, so following the store asks again once they are up.
    if (generation !== undefined && (!reload || state !== 'loading')) d.generation = generation
    let cached = false
    if (state === 'deployed') {
      if (reload) this.#track(this.#redeploy(d))
      else cached = true
    } else if (state === 'unloading' && d.record.status.reason !== 'unload_requested') {
      this.#onDemand.loadOnceAtRest(d)
    } else if (state === 'not_deployed' || state === 'failed') {
      this.#toPending(d, 'deploy_requested')
      this.#admitPending()
    }
    // `pending`/`loading` are on their way.
    const deployment = d.record
    await d.journal.settled()
    return { deployment, cached }
  }

  /**
   * Serves the model on demand here (another instance was asked): loaded on its first request
   * here. Runners already serving it stay, and may now go idle or be evicted.
   */
  serveOnDemand(model: Model, generation: number | undefined): void {
    this.assertOpen()
    const d = this.table.of(model)
    d.model = { ...model, deployment: d.record }
    if (generation !== undefined) d.generation = generation
    this.#onDemand.serve(d)
  }

  /** Undeploys the model (the caller recorded that it is not wanted): stop, release, rest. */
  async undeploy(model: Model): Promise<Deployment> {
    this.assertOpen()
    const d = this.table.of(model)
    this.#want(d, 'not_deployed')
    await this.#stop(d)
    await d.journal.settled()
    return d.record
  }

  /** Forgets the model (deleted): its deployment here must be at rest. */
  forget(model: Model): void {
    this.#forgotten.add(model.uploadId)
    this.table.forget(model)
    this.#deps.metrics.forgetModel(model)
  }

  #want(d: ModelDeployment, desired: DesiredState): void {
    if (d.record.desired !== desired) d.record = { ...d.record, desired }
  }

  /** Throws `server_shutting_down` once closing. */
  assertOpen(): void {
    if (this.#closed) throw new BerthError('server_shutting_down', 'the server is shutting down')
  }
}
