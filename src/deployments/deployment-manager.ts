import type { Logger } from 'pino'
import {
  type Deployment,
  type DeploymentReason,
  type DeploymentState,
  type DesiredState,
  NEVER_DEPLOYED,
  transition,
} from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import { type LoadedSignature, type ServingPlan, servingPlan } from '../domain/serving-plan.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import type { Serving, ServingLookup } from '../inference/inference-service.js'
import { RunnerPool } from '../inference/runner-pool.js'
import type { MetadataStore } from '../metadata/metadata-store.js'
import type { Metrics, ModelLabels } from '../observability/metrics.js'
import {
  isRefusal,
  type Reservation,
  type Runner,
  type RunnerEnd,
  type Scheduler,
} from '../scheduler/scheduler.js'
import type { DeploymentControl, DeployOptions, RequestOrigin } from './deployment-control.js'

export interface DeploymentManagerOptions {
  /** Bound on starting a runner and loading the model in it; past it: `failed`/`load_timeout`. */
  readonly loadTimeoutMs: number
  /** Restarts of a crashing runner before `failed`. */
  readonly maxRestarts: number
  /** First restart delay; doubles per consecutive crash, up to `maxRestartBackoffMs`. */
  readonly restartBackoffMs: number
  readonly maxRestartBackoffMs?: number
  /** A runner that served this long without crashing starts a fresh restart budget. */
  readonly restartResetMs?: number
  /** On undeploy, how long in-flight requests may finish before the runner is stopped. */
  readonly drainMs: number
  readonly now?: () => Date
}

export interface DeploymentManagerDeps {
  readonly metadata: MetadataStore
  readonly scheduler: Scheduler
  /** Where a model's unpacked files are installed. */
  readonly modelDir: (model: Model) => string
  readonly metrics: Metrics
  readonly logger: Logger
}

/** One model's deployment as this server runs it. */
interface Live {
  model: Model
  record: Deployment
  /** Capacity for all the deployment's replicas. */
  reservation: Reservation | undefined
  /** The runners answering requests: `pool.targets`. */
  readonly pool: RunnerPool
  signature: LoadedSignature | undefined
  /** Runners being started or loaded (first load, restart or redeploy). */
  readonly loading: Set<Runner>
  /** Replicas being brought up into the current reservation (counted before their start). */
  starting: number
  /** Bumped by every undeploy and runner swap: a flow that started under an older epoch gives up. */
  epoch: number
  restarts: number
  readySince: number
  restartTimer: NodeJS.Timeout | undefined
  pendingOrder: number
  waiters: Set<() => void>
  /** Persistence of state changes, in order. */
  writes: Promise<void>
  /** Bumped by every desired-state change asked of this server. */
  desiredStamp: number
  /** Desired-state writes not yet in the store. */
  desiredWrites: number
  /**
   * The redeploy generation (counted in the store) this server's runners follow; `undefined`
   * until known (the first sync pass adopts the stored one).
   */
  generation: number | undefined
}

/** What this server was asked of a model: see `desiredStates()`. */
export interface DesiredHere {
  readonly model: Model
  readonly desired: DesiredState
  readonly stamp: number | undefined
  readonly generation: number | undefined
}

const SETTLED: ReadonlySet<DeploymentState> = new Set(['deployed', 'failed', 'not_deployed'])

/**
 * Deployments: the DESIGN §2 state machine driven by deploy and undeploy requests and by what
 * runners do. Every change is recorded in the metadata store with its reason and time. Admission
 * is the scheduler's; this class decides when to start, restart (with backoff), give up, and
 * swap runners (a redeploy loads the new runner before the old one stops).
 */
export class DeploymentManager implements DeploymentControl, ServingLookup {
  readonly #deps: DeploymentManagerDeps
  readonly #options: Required<DeploymentManagerOptions>
  readonly #live = new Map<string, Live>()
  #pendingCounter = 0
  #closed = false
  /** Loads and redeploys in progress: `close()` waits for them. */
  readonly #flows = new Set<Promise<void>>()

  constructor(deps: DeploymentManagerDeps, options: DeploymentManagerOptions) {
    this.#deps = deps
    this.#options = {
      maxRestartBackoffMs: 30_000,
      restartResetMs: 60_000,
      now: () => new Date(),
      ...options,
    }
  }

  /**
   * Brings the store's deployments in line with a server that runs nothing yet: what should be
   * deployed is admitted again, whatever was half-done is set to rest. Run once, at start.
   */
  async reconcile(): Promise<void> {
    for (const model of await this.#deps.metadata.listModelsToReconcile()) {
      // A failed deployment stays failed until someone deploys it again.
      if (model.deployment.status.state === 'failed') continue
      const live = this.#liveFor(model)
      // This process owns no runner yet: whatever was recorded, the deployment starts over.
      const since = this.#now()
      const wanted = model.deployment.desired === 'deployed'
      live.record = {
        ...live.record,
        status: wanted
          ? { state: 'pending', reason: 'deploy_requested', since }
          : { state: 'not_deployed', reason: 'undeployed', since },
        message: wanted ? 'restarted with the server' : null,
      }
      live.pendingOrder = ++this.#pendingCounter
      this.#deps.metrics.setDeploymentState(labelsOf(model), live.record.status.state)
      this.#persist(live)
    }
    this.#admitPending()
  }

  /**
   * Asks for the model to be deployed. Already deployed: nothing happens (`cached`), unless
   * `reload` asks for a fresh runner, loaded before the old one stops. Resolves once the
   * request is recorded, with the deployment as it then stood; see `waitUntilSettled`.
   */
  async deploy(
    model: Model,
    options: DeployOptions = {},
  ): Promise<{ deployment: Deployment; cached: boolean }> {
    this.#assertOpen()
    const live = this.#liveFor(model)
    // The caller's record is the latest (e.g. new serving settings for the next runner).
    live.model = { ...model, deployment: live.record }
    this.#setDesired(live, 'deployed', options)
    if (options.generation !== undefined) live.generation = options.generation
    else if (options.reload === true && options.follow !== true) {
      // Every other instance serving an older generation redeploys too.
      const { namespaceId, modelId } = model
      live.generation = await this.#deps.metadata.bumpDeployGeneration(namespaceId, modelId)
    }
    const state = live.record.status.state
    let cached = false
    if (state === 'deployed') {
      if (options.reload === true) this.#flow(this.#redeploy(live))
      else cached = true
    } else if (state === 'not_deployed' || state === 'failed') {
      this.#toPending(live, 'deploy_requested', null)
      this.#admitPending()
    }
    // `pending`/`loading` are on their way; `unloading` is followed by a new start.
    const deployment = live.record
    await live.writes
    return { deployment, cached }
  }

  /** Stops the model's runners and releases its capacity. Resolves once `not_deployed`. */
  async undeploy(model: Model, origin: RequestOrigin = {}): Promise<Deployment> {
    this.#assertOpen()
    const live = this.#liveFor(model)
    this.#setDesired(live, 'not_deployed', origin)
    await this.#stopAll(live)
    await live.writes
    return live.record
  }

  /** Undeploys and forgets the model (it is being deleted). */
  async remove(model: Model, origin: RequestOrigin = {}): Promise<void> {
    await this.undeploy(model, origin)
    this.#live.delete(keyOf(model))
    this.#deps.metrics.forgetModel(labelsOf(model))
  }

  /** The deployment as this server sees it (the stored record when it never touched it). */
  deploymentOf(model: Model): Deployment {
    return this.#live.get(keyOf(model))?.record ?? model.deployment
  }

  /**
   * The model, with its deployment, when this server runs or manages it (anything but never
   * touched or forgotten); `undefined` otherwise.
   */
  liveModel(namespaceId: string, modelId: string): Model | undefined {
    const live = this.#live.get(`${namespaceId}/${modelId}`)
    return live === undefined ? undefined : { ...live.model, deployment: live.record }
  }

  /** The inputs and outputs the model's serving runner reported, when it has one. */
  liveSignature(model: Model): LoadedSignature | undefined {
    return this.#live.get(keyOf(model))?.signature
  }

  /**
   * For following the store: each model this server manages, with its desired state here and a
   * stamp that changes whenever a request here changes it (`undefined` while such a change is
   * still being written, when the store may not show it yet).
   */
  desiredStates(): Map<string, DesiredHere> {
    const states = new Map<string, DesiredHere>()
    for (const key of this.#live.keys()) states.set(key, this.desiredStateOf(key) as DesiredHere)
    return states
  }

  /** One entry of `desiredStates()`, by `namespaceId/modelId`. */
  desiredStateOf(key: string): DesiredHere | undefined {
    const live = this.#live.get(key)
    if (live === undefined) return undefined
    const stamp = live.desiredWrites > 0 ? undefined : live.desiredStamp
    return { model: live.model, desired: live.record.desired, stamp, generation: live.generation }
  }

  /** Records the redeploy generation this server's runners follow, when it was not known. */
  adoptGeneration(key: string, generation: number): void {
    const live = this.#live.get(key)
    if (live !== undefined) live.generation ??= generation
  }

  /** Runner processes serving the model now. */
  replicasOf(model: Model): number {
    return this.#live.get(keyOf(model))?.pool.targets.length ?? 0
  }

  /**
   * Resolves when the deployment settles (`deployed`, `failed`, or `not_deployed` when that is
   * what is wanted), or after `timeoutMs` with whatever it is then.
   */
  async waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment> {
    const live = this.#live.get(keyOf(model))
    if (live === undefined) return model.deployment
    const settled = () =>
      SETTLED.has(live.record.status.state) &&
      (live.record.status.state !== 'not_deployed' || live.record.desired === 'not_deployed')
    if (!settled()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs)
        function done() {
          clearTimeout(timer)
          live?.waiters.delete(check)
          resolve()
        }
        function check() {
          if (settled()) done()
        }
        live.waiters.add(check)
      })
    }
    await live.writes
    return live.record
  }

  /**
   * The runners answering the model's requests. Throws `model_not_ready` (with the state and
   * reason) when there is none.
   */
  serving(model: Model): Serving {
    const live = this.#live.get(keyOf(model))
    if (live !== undefined && live.pool.targets.length > 0 && live.signature !== undefined) {
      return { model: live.model, pool: live.pool, signature: live.signature }
    }
    throw notReady(model, live?.record ?? model.deployment)
  }

  /** Stops every runner (the store keeps what should be deployed, for the next start). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all(
      [...this.#live.values()].map(async (live) => {
        live.epoch += 1
        clearTimeout(live.restartTimer)
        const shutdown = new BerthError('server_shutting_down', 'the server is shutting down')
        await Promise.all(this.#takeRunners(live, shutdown).map((r) => r.stop(0)))
        live.reservation?.release()
        await live.writes
      }),
    )
    await Promise.allSettled([...this.#flows])
  }

  #flow(promise: Promise<void>): void {
    this.#flows.add(promise)
    const forget = () => this.#flows.delete(promise)
    promise.then(forget, forget)
  }

  #liveFor(model: Model): Live {
    const key = keyOf(model)
    let live = this.#live.get(key)
    if (live === undefined) {
      // This server runs nothing for the model yet, whatever another instance recorded.
      const { state } = model.deployment.status
      const record: Deployment =
        state === 'not_deployed' || state === 'failed'
          ? model.deployment
          : { ...model.deployment, status: NEVER_DEPLOYED(this.#now()), message: null }
      live = {
        model,
        record,
        reservation: undefined,
        pool: new RunnerPool(),
        signature: undefined,
        loading: new Set(),
        starting: 0,
        epoch: 0,
        restarts: 0,
        readySince: 0,
        restartTimer: undefined,
        pendingOrder: 0,
        waiters: new Set(),
        writes: Promise.resolve(),
        desiredStamp: 0,
        desiredWrites: 0,
        generation: undefined,
      }
      this.#live.set(key, live)
      this.#deps.metrics.setDeploymentState(labelsOf(model), live.record.status.state)
    }
    return live
  }

  /** Starts what fits, in request order; records why the others wait or can never start. */
  #admitPending(): void {
    if (this.#closed) return
    const waiting = [...this.#live.values()]
      .filter((l) => l.record.status.state === 'pending')
      .sort((a, b) => a.pendingOrder - b.pendingOrder)
    for (const live of waiting) {
      const plan = this.#planFor(live.model)
      if ('notServable' in plan) {
        this.#set(live, 'failed', 'model_not_servable', plan.notServable)
        continue
      }
      const reservation = this.#deps.scheduler.reserve(
        live.model.resources,
        live.model.serving.replicas,
      )
      if (isRefusal(reservation)) {
        if (reservation.never) {
          const reason =
            reservation.reason === 'insufficient_gpu' ? 'gpu_unavailable' : 'never_fits'
          this.#set(live, 'failed', reason, reservation.message)
        } else if (live.record.status.reason !== reservation.reason) {
          this.#set(live, 'pending', reservation.reason, reservation.message)
        }
        continue
      }
      live.reservation = reservation
      this.#flow(this.#load(live, live.epoch, plan, 'loading_model'))
    }
  }

  /**
   * Starts the replicas the deployment's reservation lacks and loads the model in them; then
   * serves them beside any already serving.
   */
  async #load(live: Live, epoch: number, plan: ServingPlan, reason: DeploymentReason) {
    const reservation = live.reservation
    if ('notServable' in plan || reservation === undefined) return
    const missing = reservation.replicas - live.pool.targets.length - live.starting
    if (missing <= 0) return
    // With replicas still serving, the deployment stays `deployed` while one comes back.
    if (live.pool.targets.length === 0) this.#set(live, 'loading', reason, null)
    try {
      const loaded = await this.#startReplicas(live, epoch, reservation, plan, missing)
      if (loaded !== undefined) this.#serve(live, loaded)
    } catch (err) {
      if (epoch !== live.epoch || this.#closed) return
      this.#onLoadFailed(live, err)
    }
  }

  /**
   * Starts `count` runners in `reservation` side by side and loads the model in each: all of
   * them, or none (the others stopped, the first failure thrown; `undefined` when superseded).
   */
  async #startReplicas(
    live: Live,
    epoch: number,
    reservation: Reservation,
    plan: ServingPlan,
    count: number,
  ): Promise<Loaded[] | undefined> {
    const counted = reservation === live.reservation
    if (counted) live.starting += count
    let results: PromiseSettledResult<Loaded | undefined>[]
    try {
      results = await Promise.allSettled(
        Array.from({ length: count }, () => this.#startAndLoad(live, epoch, reservation, plan)),
      )
    } finally {
      if (counted) live.starting -= count
    }
    const loaded = results.flatMap((r) =>
      r.status === 'fulfilled' && r.value !== undefined ? [r.value] : [],
    )
    if (loaded.length === count) return loaded
    await Promise.all(loaded.map((l) => l.runner.stop(0)))
    const failure = results.find((r) => r.status === 'rejected')
    if (failure !== undefined) throw failure.reason
    return undefined
  }

  /**
   * Starts a runner in `reservation` and loads the model. Resolves `undefined` (the runner
   * stopped) when the deployment moved on meanwhile (`epoch` changed, or closing); on a failure
   * the runner is stopped and the error thrown.
   */
  async #startAndLoad(
    live: Live,
    epoch: number,
    reservation: Reservation,
    plan: ServingPlan,
  ): Promise<Loaded | undefined> {
    if ('notServable' in plan) return undefined
    const started = performance.now()
    const superseded = () => epoch !== live.epoch || this.#closed
    const runner = await this.#deps.scheduler.start(reservation, {
      runtime: plan.runtime,
      label: keyOf(live.model),
    })
    try {
      if (superseded()) {
        await runner.stop(0)
        return undefined
      }
      live.loading.add(runner)
      const signature = await runner.load(plan.target, this.#options.loadTimeoutMs)
      if (superseded()) {
        await runner.stop(0)
        return undefined
      }
      this.#deps.metrics.modelLoadDuration.observe(
        labelsOf(live.model),
        (performance.now() - started) / 1000,
      )
      return { runner, signature }
    } catch (err) {
      await runner.stop(0)
      throw err
    } finally {
      live.loading.delete(runner)
    }
  }

  /** Adds loaded runners to those answering requests, and watches how each ends. */
  #serve(live: Live, loaded: readonly Loaded[]): void {
    live.signature ??= loaded[0]?.signature
    live.readySince = Date.now()
    this.#set(live, 'deployed', 'ready', null)
    live.pool.set([...live.pool.targets, ...loaded.map((l) => l.runner)])
    for (const { runner } of loaded) {
      void runner.ended.then((end) => this.#onRunnerEnded(live, runner, end))
    }
  }

  /**
   * Takes every runner from the deployment (serving and loading), for stopping; requests still
   * queued fail with `error`.
   */
  #takeRunners(live: Live, error: Error): Runner[] {
    const runners = [...live.pool.targets, ...live.loading]
    live.loading.clear()
    live.signature = undefined
    live.pool.set([], error)
    return runners
  }

  #onLoadFailed(live: Live, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    this.#deps.logger.warn({ err, model: keyOf(live.model) }, 'deployment: the model did not load')
    const code = isBerthError(err) ? err.code : 'internal_error'
    switch (code) {
      case 'runner_crashed':
        this.#restartOrFail(live, 'runner_crashed', message)
        return
      case 'runner_protocol_error':
        this.#restartOrFail(live, 'runner_protocol_error', message)
        return
      case 'runner_start_timeout':
      case 'runner_timeout':
        this.#fail(live, 'load_timeout', message)
        return
      case 'runner_memory_limit_exceeded':
        this.#fail(live, 'memory_limit_exceeded', message)
        return
      case 'runtime_unavailable':
        this.#fail(live, 'runtime_unavailable', message)
        return
      default:
        this.#fail(live, 'model_load_failed', message)
        return
    }
  }

  #onRunnerEnded(live: Live, runner: Runner, end: RunnerEnd): void {
    if (!live.pool.targets.includes(runner) || end.cause === 'stopped' || this.#closed) return
    const others = live.pool.targets.filter((r) => r !== runner)
    if (others.length === 0) live.signature = undefined
    // No `unavailable`: requests queued for it wait for the restart (up to their deadline).
    live.pool.set(others)
    this.#deps.logger.warn({ model: keyOf(live.model), ...end }, 'deployment: runner ended')
    switch (end.cause) {
      case 'memory_limit_exceeded':
        this.#fail(live, 'memory_limit_exceeded', end.message)
        return
      case 'protocol_error':
        this.#restartOrFail(live, 'runner_protocol_error', end.message)
        return
      case 'unresponsive':
        this.#restartOrFail(live, 'runner_unresponsive', end.message)
        return
      case 'crashed':
        this.#restartOrFail(live, 'runner_crashed', end.message)
        return
    }
  }

  /** Restarts after a backoff while the budget lasts; then `failed` with `reason`. */
  #restartOrFail(live: Live, reason: DeploymentReason, message: string): void {
    const o = this.#options
    if (live.readySince > 0 && Date.now() - live.readySince > o.restartResetMs) live.restarts = 0
    live.restarts += 1
    if (live.restarts > o.maxRestarts) {
      this.#fail(live, reason, `${message} (gave up after ${o.maxRestarts} restarts)`)
      return
    }
    this.#deps.metrics.runnerRestarts.inc(labelsOf(live.model))
    const serving = live.pool.targets.length
    if (serving === 0) this.#set(live, 'loading', 'restarting', message)
    else {
      const wanted = live.reservation?.replicas ?? serving
      this.#set(
        live,
        'deployed',
        'restarting',
        `${serving} of ${wanted} replicas serving; ${message}`,
      )
    }
    const delay = Math.min(o.restartBackoffMs * 2 ** (live.restarts - 1), o.maxRestartBackoffMs)
    const epoch = live.epoch
    clearTimeout(live.restartTimer)
    live.restartTimer = setTimeout(() => {
      live.restartTimer = undefined
      if (epoch === live.epoch && !this.#closed) {
        this.#flow(this.#load(live, epoch, this.#planFor(live.model), 'restarting'))
      }
    }, delay)
  }

  /** Ends the deployment as `failed`, releasing what it held. */
  #fail(live: Live, reason: DeploymentReason, message: string): void {
    live.epoch += 1
    clearTimeout(live.restartTimer)
    this.#set(live, 'failed', reason, message)
    for (const runner of this.#takeRunners(live, notReady(live.model, live.record))) {
      void runner.stop(0)
    }
    live.reservation?.release()
    live.reservation = undefined
    this.#admitPending()
  }

  /**
   * Loads fresh runners (as many replicas as now wanted) beside the serving ones, then swaps
   * them and stops the old. When the node has no room for both, the old ones stop first and
   * the deployment is admitted again like a new one.
   */
  async #redeploy(live: Live): Promise<void> {
    const plan = this.#planFor(live.model)
    if ('notServable' in plan || live.pool.targets.length === 0) return
    const epoch = live.epoch
    this.#set(live, 'loading', 'redeploying', null)
    const replicas = live.model.serving.replicas
    const extra = this.#deps.scheduler.reserve(live.model.resources, replicas)
    if (isRefusal(extra)) {
      live.epoch += 1
      clearTimeout(live.restartTimer)
      // Requests queued meanwhile wait for the new runners (up to their deadline).
      const old = [...live.pool.targets, ...live.loading]
      live.loading.clear()
      live.signature = undefined
      live.pool.set([])
      await Promise.all(old.map((r) => r.stop(this.#options.drainMs)))
      live.reservation?.release()
      live.reservation = undefined
      if (live.record.status.state !== 'loading' || this.#closed) return
      this.#toPending(live, 'redeploying', null)
      this.#admitPending()
      return
    }
    try {
      const loaded = await this.#startReplicas(live, epoch, extra, plan, replicas)
      if (loaded === undefined) {
        extra.release()
        return
      }
      // Flows of the old runners (a restart under way) give up from here.
      live.epoch += 1
      clearTimeout(live.restartTimer)
      const old = [...live.pool.targets]
      const oldReservation = live.reservation
      live.reservation = extra
      live.restarts = 0
      live.signature = undefined
      live.pool.set([])
      this.#serve(live, loaded)
      await Promise.all(old.map((r) => r.stop(this.#options.drainMs)))
      oldReservation?.release()
    } catch (err) {
      extra.release()
      if (epoch !== live.epoch || this.#closed) return
      // The old runners still serve: stay deployed, and say why the new ones did not come up.
      const message = err instanceof Error ? err.message : String(err)
      if (live.pool.targets.length > 0) {
        this.#set(live, 'deployed', 'ready', `redeploy failed: ${message}`)
      } else this.#onLoadFailed(live, err)
    }
  }

  /** Undeploy: stop everything the deployment runs, release its capacity, rest. */
  async #stopAll(live: Live): Promise<void> {
    live.epoch += 1
    clearTimeout(live.restartTimer)
    live.restartTimer = undefined
    const state = live.record.status.state
    if (state === 'not_deployed' || state === 'unloading') return
    if (state === 'failed' || state === 'pending') {
      this.#set(live, 'not_deployed', 'undeployed', null)
      return
    }
    this.#set(live, 'unloading', 'unload_requested', null)
    const runners = this.#takeRunners(live, notReady(live.model, live.record))
    await Promise.all(runners.map((r) => r.stop(this.#options.drainMs)))
    live.reservation?.release()
    live.reservation = undefined
    this.#set(live, 'not_deployed', 'undeployed', null)
    // A deploy that arrived while unloading starts now.
    if (live.record.desired === 'deployed') this.#toPending(live, 'deploy_requested', null)
    this.#admitPending()
  }

  #toPending(live: Live, reason: DeploymentReason, message: string | null): void {
    live.pendingOrder = ++this.#pendingCounter
    live.restarts = 0
    live.readySince = 0
    this.#set(live, 'pending', reason, message)
  }

  #planFor(model: Model): ServingPlan {
    return servingPlan(model, this.#deps.modelDir(model))
  }

  #setDesired(live: Live, desired: DesiredState, origin: RequestOrigin): void {
    if (origin.follow !== true) {
      // Written even when unchanged here: another instance may have written the opposite.
      live.desiredStamp += 1
      live.desiredWrites += 1
      const { namespaceId, modelId } = live.model
      live.writes = live.writes
        .then(() => this.#deps.metadata.setDesiredState(namespaceId, modelId, desired))
        .then(
          () => undefined,
          (err: unknown) => {
            this.#deps.logger.error({ err, model: keyOf(live.model) }, 'deployment: not recorded')
          },
        )
        .finally(() => {
          live.desiredWrites -= 1
        })
    }
    if (live.record.desired === desired) return
    live.record = { ...live.record, desired }
  }

  /** Moves the state (refusing illegal moves), records it, and wakes whoever waits. */
  #set(live: Live, state: DeploymentState, reason: DeploymentReason, message: string | null) {
    const now = new Date(this.#now())
    const status = transition(live.record.status, state, reason, now)
    live.record = {
      ...live.record,
      status,
      message,
      deployedAt: state === 'deployed' ? status.since : live.record.deployedAt,
    }
    this.#deps.metrics.setDeploymentState(labelsOf(live.model), state)
    this.#deps.logger.info(
      { model: keyOf(live.model), state, reason, ...(message === null ? {} : { message }) },
      'deployment state',
    )
    this.#persist(live)
  }

  /** Writes where the deployment is after the previous writes; then wakes the waiters. */
  #persist(live: Live): void {
    const { desired: _, ...observed } = live.record
    const { namespaceId, modelId } = live.model
    live.writes = live.writes
      .then(() => this.#deps.metadata.setDeploymentStatus(namespaceId, modelId, observed))
      .then(
        () => undefined,
        (err: unknown) => {
          this.#deps.logger.error({ err, model: keyOf(live.model) }, 'deployment: not recorded')
        },
      )
      .then(() => {
        for (const wake of [...live.waiters]) wake()
      })
  }

  #now(): string {
    return this.#options.now().toISOString()
  }

  #assertOpen(): void {
    if (this.#closed) throw new BerthError('server_shutting_down', 'the server is shutting down')
  }
}

/** A runner with the model loaded. */
interface Loaded {
  readonly runner: Runner
  readonly signature: LoadedSignature
}

/** 503 `model_not_ready`, saying where the deployment is. */
function notReady(model: Model, deployment: Deployment): BerthError {
  const { status, message } = deployment
  return new BerthError(
    'model_not_ready',
    `model "${model.modelId}" is ${status.state} (${status.reason})${message === null ? '' : `: ${message}`}`,
    { details: { model_id: model.modelId, state: status.state, reason: status.reason } },
  )
}

function keyOf(model: Model): string {
  return `${model.namespaceId}/${model.modelId}`
}

function labelsOf(model: Model): ModelLabels {
  return { namespace: model.namespaceId, model: model.name, version: model.version }
}
