import type { Logger } from 'pino'
import type { Clock } from '../domain/clock.js'
import {
  type Deployment,
  type DeploymentReason,
  type DeploymentState,
  NEVER_DEPLOYED,
  transition,
} from '../domain/deployment-state.js'
import { type Model, modelKey } from '../domain/model.js'
import type { ArchiveSource, LoadTarget, RunnerRuntime } from '../domain/serving-plan.js'
import { RunnerPool } from '../inference/runner-pool.js'
import { type Metrics, type ModelLabels, modelLabels } from '../observability/metrics.js'
import { tracer, withSpan } from '../observability/tracing.js'
import type { Reservation, Runner, RunnerEnd, Scheduler } from '../scheduler/scheduler.js'
import type { Signature } from '../tensors/tensor.js'
import type { DeploymentJournal } from './deployment-journal.js'
import type { ReplaceHistory, RestartHistory } from './restart-policy.js'
import { warmUp } from './warm-up.js'

export interface ModelDeploymentDeps {
  readonly scheduler: Pick<Scheduler, 'start'>
  readonly journal: DeploymentJournal
  readonly clock: Clock
  readonly metrics: Metrics
  readonly logger: Logger
  /** Bound on loading the model in a started runner (and on its warm-up inference). */
  readonly loadTimeoutMs: number
  /** Run one inference (see `warmUp`) before a loaded runner serves. */
  readonly warmUp: boolean
  /** See `ModelLifecycleDeps.archiveSource`. */
  readonly archiveSource?: ((model: Model) => Promise<ArchiveSource>) | undefined
}

/** A runner with the model loaded. */
export interface Loaded {
  readonly runner: Runner
  readonly signature: Signature
}

/** What a runner is started and loaded with. */
export interface RunnerPlan {
  readonly runtime: RunnerRuntime
  readonly target: LoadTarget
}

/**
 * One model's deployment on this server (Triton's per-model `ModelInfo`): its record, the
 * capacity it holds, the runners that serve it and those being started, and an epoch that
 * every start, restart and swap checks, so a flow overtaken by an undeploy or a newer runner
 * set gives up instead of serving stale runners.
 */
export class ModelDeployment {
  model: Model
  record: Deployment
  /** The runners answering requests now. */
  readonly pool = new RunnerPool()
  /** Where restarts stand: see `RestartPolicy`. */
  restarts: RestartHistory = { restarts: 0, readySince: undefined }
  /** Runners replaced for a request's fault: see `RestartPolicy.replace`. */
  replaces: ReplaceHistory = { count: 0, since: Number.NEGATIVE_INFINITY }
  readonly journal: DeploymentJournal
  /** When a request last held the deployment (the clock's ms); 0: never. */
  lastUsed = 0
  /** Requests holding the deployment now (from `acquire` to their answer, waits included). */
  active = 0
  /**
   * Resident bytes per replica, measured after the last load; `undefined` until measured. An
   * on-demand deployment is admitted by it (or by an estimate before its first load).
   */
  measuredBytes: number | undefined
  /**
   * The redeploy generation (counted in the store) this server's runners follow; `undefined`
   * until known (following the store adopts the stored one).
   */
  generation: number | undefined
  readonly #deps: ModelDeploymentDeps
  #reservation: Reservation | undefined
  /** Capacity of runners a redeploy replaced, held until they have drained and stopped. */
  readonly #retiring = new Set<Reservation>()
  #signature: Signature | undefined
  /** Runners being started or loaded (first load, restart or redeploy). */
  readonly #loading = new Set<Runner>()
  /**
   * Replicas being brought up, per reservation (counted before their start). Only the current
   * reservation's count matters: a start overtaken by an undeploy still runs out (and stops
   * itself) while a new deployment holds a new reservation.
   */
  readonly #starting = new Map<Reservation, number>()
  #epoch = 0
  #cancelRestart: (() => void) | undefined
  #cancelIdle: (() => void) | undefined

  constructor(model: Model, deps: ModelDeploymentDeps) {
    this.#deps = deps
    this.journal = deps.journal
    this.model = model
    // This server runs nothing for the model yet, whatever another instance recorded.
    const { state } = model.deployment.status
    this.record =
      state === 'not_deployed' || state === 'failed'
        ? model.deployment
        : { ...model.deployment, status: NEVER_DEPLOYED(this.#now()), message: null }
    deps.metrics.setDeploymentState(this.labels, this.record.status.state)
  }

  get key(): string {
    return modelKey(this.model)
  }

  get labels(): ModelLabels {
    return modelLabels(this.model)
  }

  get epoch(): number {
    return this.#epoch
  }

  get reservation(): Reservation | undefined {
    return this.#reservation
  }

  /** The signature the serving runners reported; `undefined` while none serves. */
  get signature(): Signature | undefined {
    return this.#signature
  }

  /** Replicas the reservation has room for that neither serve nor are being started. */
  get missing(): number {
    const wanted = this.#reservation?.replicas ?? 0
    const starting =
      this.#reservation === undefined ? 0 : (this.#starting.get(this.#reservation) ?? 0)
    return wanted - this.pool.targets.length - starting
  }

  /** The model with its deployment as this server sees it. */
  get current(): Model {
    return { ...this.model, deployment: this.record }
  }

  /**
   * Moves the state (refusing illegal moves: `deployment_transition_invalid`), records it in
   * the store after the earlier changes, and wakes whoever waits for it.
   */
  moveTo(state: DeploymentState, reason: DeploymentReason, message: string | null): void {
    const status = transition(this.record.status, state, reason, new Date(this.#deps.clock.now()))
    this.record = {
      ...this.record,
      status,
      message,
      // Serving anew; not a note on a set that serves on (a redeploy waiting for room).
      deployedAt:
        state === 'deployed' && reason === 'ready' ? status.since : this.record.deployedAt,
    }
    this.#observed()
    this.#deps.logger.info(
      { model: this.key, state, reason, ...(message === null ? {} : { message }) },
      'deployment state',
    )
  }

  /** Replaces the record outright (reconciliation at start), and records it. */
  reset(record: Deployment): void {
    this.record = record
    this.#observed()
  }

  /** Flows started under an older epoch give up from now on; a planned restart is cancelled. */
  supersede(): void {
    this.#epoch += 1
    this.#cancelRestart?.()
    this.#cancelRestart = undefined
    this.#cancelIdle?.()
    this.#cancelIdle = undefined
  }

  /** Runs `check` after `delayMs` (replacing an earlier one) unless superseded meanwhile. */
  scheduleIdleCheck(delayMs: number, check: () => void): void {
    this.#cancelIdle?.()
    const epoch = this.#epoch
    this.#cancelIdle = this.#deps.clock.after(delayMs, () => {
      this.#cancelIdle = undefined
      if (epoch === this.#epoch) check()
    })
  }

  /** Runs `restart` after `delayMs` unless superseded meanwhile. */
  scheduleRestart(delayMs: number, restart: (epoch: number) => void): void {
    this.#cancelRestart?.()
    const epoch = this.#epoch
    this.#cancelRestart = this.#deps.clock.after(delayMs, () => {
      this.#cancelRestart = undefined
      if (epoch === this.#epoch) restart(epoch)
    })
  }

  /** Every reservation the deployment owns: its capacity, and that of runners still retiring. */
  get owned(): readonly Reservation[] {
    return this.#reservation === undefined
      ? [...this.#retiring]
      : [this.#reservation, ...this.#retiring]
  }

  /** Holds `reservation` as the deployment's capacity: its one owner, until `release`. */
  hold(reservation: Reservation): void {
    if (this.#reservation !== reservation) this.#reservation?.release()
    this.#reservation = reservation
  }

  /** Returns the deployment's capacity to the node. Idempotent. */
  release(): void {
    this.#reservation?.release()
    this.#reservation = undefined
  }

  /**
   * Starts `count` runners in `reservation` side by side and loads the model in each: all of
   * them, or none (the others stopped, the first failure thrown; `undefined` when `superseded`
   * turned true meanwhile).
   */
  async startReplicas(
    reservation: Reservation,
    plan: RunnerPlan,
    count: number,
    superseded: () => boolean,
  ): Promise<Loaded[] | undefined> {
    this.#starting.set(reservation, (this.#starting.get(reservation) ?? 0) + count)
    let results: PromiseSettledResult<Loaded | undefined>[]
    try {
      results = await Promise.allSettled(
        Array.from({ length: count }, () => this.#startAndLoad(reservation, plan, superseded)),
      )
    } finally {
      const left = (this.#starting.get(reservation) ?? 0) - count
      if (left > 0) this.#starting.set(reservation, left)
      else this.#starting.delete(reservation)
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
   * Adds loaded runners to those answering requests, marks the deployment `deployed`, and
   * hands each runner's end to `onEnded`.
   */
  serve(loaded: readonly Loaded[], onEnded: (runner: Runner, end: RunnerEnd) => void): void {
    this.#signature ??= loaded[0]?.signature
    this.restarts = { ...this.restarts, readySince: this.#deps.clock.now() }
    this.moveTo('deployed', 'ready', null)
    this.pool.set([...this.pool.targets, ...loaded.map((l) => l.runner)])
    for (const { runner } of loaded) void runner.ended.then((end) => onEnded(runner, end))
  }

  /**
   * Takes a runner that ended out of those serving. Returns `false` when it was not serving.
   * Requests queued for it wait for a restart (up to their deadline).
   */
  drop(runner: Runner): boolean {
    if (!this.pool.targets.includes(runner)) return false
    const others = this.pool.targets.filter((r) => r !== runner)
    if (others.length === 0) this.#signature = undefined
    this.pool.set(others)
    return true
  }

  /**
   * Takes every runner (serving and loading), for stopping. Requests still queued fail with
   * `error`; without one they wait for runners to come (up to their deadline).
   */
  takeRunners(error?: Error): Runner[] {
    const runners = [...this.pool.targets, ...this.#loading]
    this.#loading.clear()
    this.#signature = undefined
    this.pool.set([], error)
    return runners
  }

  /**
   * A redeploy's runners are loaded: they replace the serving ones (which drain and stop) and
   * `reservation` replaces the capacity the old ones held.
   */
  async swapTo(
    loaded: readonly Loaded[],
    reservation: Reservation,
    drainMs: number,
    onEnded: (runner: Runner, end: RunnerEnd) => void,
  ): Promise<void> {
    // Flows of the old runners (a restart under way) give up from here.
    this.supersede()
    const old = [...this.pool.targets]
    const oldReservation = this.#reservation
    if (oldReservation !== undefined) this.#retiring.add(oldReservation)
    this.#reservation = reservation
    this.restarts = { restarts: 0, readySince: undefined }
    this.#signature = undefined
    this.pool.set([])
    this.serve(loaded, onEnded)
    try {
      await Promise.all(old.map((r) => r.stop(drainMs)))
    } finally {
      if (oldReservation !== undefined) {
        oldReservation.release()
        this.#retiring.delete(oldReservation)
      }
    }
  }

  /** Stops every runner (draining up to `drainMs`) and releases the capacity. */
  async stopAll(drainMs: number, error?: Error): Promise<void> {
    await Promise.all(this.takeRunners(error).map((r) => r.stop(drainMs)))
    this.release()
  }

  /**
   * Starts a runner in `reservation` and loads the model. Resolves `undefined` (the runner
   * stopped) when superseded meanwhile; on a failure the runner is stopped and the error thrown.
   */
  async #startAndLoad(
    reservation: Reservation,
    plan: RunnerPlan,
    superseded: () => boolean,
  ): Promise<Loaded | undefined> {
    const started = performance.now()
    const runner = await this.#deps.scheduler.start(reservation, {
      runtime: plan.runtime,
      label: this.key,
      organizationId: this.model.organizationId,
      // On-demand models share processes (density); pinned ones keep a process of their own, so
      // no neighbour's request can take them down.
      mayShare: this.record.desired === 'on_demand',
      modelBytes: this.model.manifest.totalBytes,
      nodeSelector: this.model.serving.nodeSelector,
    })
    try {
      if (superseded()) {
        await runner.stop(0)
        return undefined
      }
      this.#loading.add(runner)
      // Signed per load: a restart an hour later gets a URL of its own.
      const source = this.#deps.archiveSource
      const target =
        source === undefined ? plan.target : { ...plan.target, archive: await source(this.model) }
      const span = tracer().startSpan('model.load', {
        attributes: { 'berth.model': this.key, 'berth.runtime': plan.runtime },
      })
      const signature = await withSpan(span, () => runner.load(target, this.#deps.loadTimeoutMs))
      // Weights without a graph are held, not run: there is nothing to warm up.
      if (this.#deps.warmUp && plan.runtime !== 'weights' && !superseded()) {
        const refused = await warmUp(runner, signature, this.#deps.loadTimeoutMs)
        if (refused !== undefined) {
          this.#deps.logger.warn(
            { model: this.key, error: refused.message },
            'deployment: the model refused its warm-up inference (inputs made from its signature); it serves',
          )
        }
      }
      if (superseded()) {
        await runner.stop(0)
        return undefined
      }
      const seconds = (performance.now() - started) / 1000
      this.#deps.metrics.modelLoadDuration.observe(this.labels, seconds)
      return { runner, signature }
    } catch (err) {
      await runner.stop(0)
      throw err
    } finally {
      this.#loading.delete(runner)
    }
  }

  #observed(): void {
    this.#deps.metrics.setDeploymentState(this.labels, this.record.status.state)
    const { desired: _, ...observed } = this.record
    this.journal.record(observed)
  }

  #now(): string {
    return new Date(this.#deps.clock.now()).toISOString()
  }
}
