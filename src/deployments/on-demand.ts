import type { Clock } from '../domain/clock.js'
import { type DeploymentReason, isServed, waitsForCapacity } from '../domain/deployment-state.js'
import { type Model, modelKey, type ResourceRequirements } from '../domain/model.js'
import { BerthError } from '../errors/berth-error.js'
import type { Acquired } from '../inference/inference-service.js'
import type { Metrics } from '../observability/metrics.js'
import type { Admission, AdmissionQueue } from './admission-queue.js'
import { notReady } from './deployment-readiness.js'
import type { DeploymentTable } from './deployment-table.js'
import type { ModelDeployment } from './model-deployment.js'

/**
 * What a runner process holds before any model: Node and ONNX Runtime, measured at about 89 MiB
 * resident. Part of the estimate of a model never loaded yet.
 */
const RUNNER_BASE_BYTES = 96 * 1024 ** 2

/**
 * What each runner of a deployment is counted as against the node: no CPUs (they are a share of
 * the node's threads, not a cap on how many models are loaded), its GPUs, and its resident memory
 * as last measured; before its first load, for an on-demand model an estimate (the runner's base
 * plus twice the model's files: the weights read and the runtime's copy of them), for a pinned
 * one its whole `memory_gb` (its first load is not squeezed). Never more than the `memory_gb` it
 * is held to.
 */
export function chargeOf(
  model: Model,
  onDemand: boolean,
  measuredBytes: number | undefined,
): ResourceRequirements {
  const files = model.manifest.files.reduce((sum, f) => sum + f.sizeBytes, 0)
  const before = onDemand ? RUNNER_BASE_BYTES + 2 * files : model.resources.memoryBytes
  return {
    numCpus: 0,
    numGpus: model.resources.numGpus,
    memoryBytes: Math.min(model.resources.memoryBytes, measuredBytes ?? before),
  }
}

/**
 * How long an on-demand deployment that failed rests before a request loads it again (a load
 * timeout on a busy machine must not end the model for good).
 */
const FAILED_RETRY_MS = 30_000

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

export interface OnDemandDeps {
  readonly table: DeploymentTable
  readonly clock: Clock
  readonly metrics: Metrics
  /** How long a deployment may idle unless its model says (`idle_timeout_s`); 0: never. */
  readonly idleTimeoutMs: number
  /** How long in-flight requests may finish when runners are unloaded. */
  readonly drainMs: number
  /** Queues the deployment for capacity (`pending`, with `reason`) and admits what fits. */
  readonly load: (d: ModelDeployment, reason: DeploymentReason) => void
  /** Admits what waits, once capacity came back. */
  readonly admit: () => void
  /** A deployment is no longer held by any request (it may be evicted now). */
  readonly released: () => void
  /** Takes a pending deployment out of the queue, back to rest (`not_deployed`/`on_demand`). */
  readonly rest: (d: ModelDeployment) => void
  /** Whether a model of this upload was deleted here. */
  readonly forgotten: (uploadId: string) => boolean
  /** Has `close()` wait for a flow. */
  readonly track: (flow: Promise<void>) => void
  readonly closed: () => boolean
}

/**
 * The on-demand side of the deployments' life (ModelMesh's): models loaded by the requests that
 * need them, held while used, unloaded after their idle time, and evicted least recently used
 * first when another model's load needs the memory. Pinned (eager) deployments are never
 * unloaded here.
 */
export class OnDemand {
  readonly #deps: OnDemandDeps
  /** Deployments going to rest that a deploy asked for meanwhile: loaded again at rest. */
  readonly #reloadAtRest = new Set<ModelDeployment>()

  constructor(deps: OnDemandDeps) {
    this.#deps = deps
  }

  /**
   * The runners serving the model, for one request: an on-demand model at rest is loaded (one
   * load, whoever asks meanwhile), a load under way is waited for, up to `timeoutMs`. The
   * deployment counts as used (never idle, never evicted) until `release`. Throws
   * `model_not_ready` (with the state and reason) when the model is not served (undeployed,
   * failed) or waits for capacity nothing will free soon, `inference_timeout` (504) when it is
   * not ready within `timeoutMs`.
   */
  async acquire(model: Model, timeoutMs: number): Promise<Acquired> {
    const d = this.#deploymentOf(model)
    const started = this.#deps.clock.now()
    const until = started + timeoutMs
    let waited = false
    let admitted = false
    d.active += 1
    let held = true
    const release = () => {
      if (!held) return
      held = false
      d.active -= 1
      d.lastUsed = this.#deps.clock.now()
      // No longer busy: a load that waits for memory may now evict it.
      if (d.active === 0) this.#deps.released()
    }
    try {
      for (;;) {
        const signature = d.signature
        if (d.pool.targets.length > 0 && signature !== undefined) {
          d.lastUsed = this.#deps.clock.now()
          if (waited) {
            this.#deps.metrics.coldLoadWait.observe(d.labels, (d.lastUsed - started) / 1000)
          }
          return { model: d.model, pool: d.pool, signature, release }
        }
        const { state, since } = d.record.status
        if (waitsForCapacity(d.record) && !admitted) {
          // Models busy when it was queued may be idle now: try (and evict) once more.
          admitted = true
          this.#deps.admit()
          continue
        }
        const retry =
          state === 'failed' &&
          d.record.desired === 'on_demand' &&
          this.#deps.clock.now() - Date.parse(since) >= FAILED_RETRY_MS
        if (!isServed(d.record.desired) || (state === 'failed' && !retry)) {
          throw notReady(d.model, d.record)
        }
        if (waitsForCapacity(d.record)) {
          const refusal = notReady(d.model, d.record)
          // Nobody else wants it: it rests rather than loading later for no one.
          if (d.active === 1) this.#deps.rest(d)
          throw refusal
        }
        if (state === 'not_deployed' || retry) {
          this.#deps.load(d, 'first_request')
          // Counted when it loads, not when it is refused for memory at once.
          if (!waitsForCapacity(d.record)) this.#deps.metrics.observeColdLoad(d.model)
          continue
        }
        waited = true
        const left = until - this.#deps.clock.now()
        if (this.#deps.closed()) throw notReady(d.model, d.record)
        if (left <= 0) {
          throw new BerthError(
            'inference_timeout',
            `model "${d.model.modelId}" did not load within the request's time (it is ${d.record.status.state}); retry shortly`,
            { details: { model_id: d.model.modelId, state: d.record.status.state } },
          )
        }
        const before = d.record
        await d.journal.waitFor(() => d.record !== before || d.pool.targets.length > 0, left)
      }
    } catch (err) {
      release()
      throw err
    }
  }

  /**
   * The model's deployment, made on first use unless the model was deleted (a request that
   * looked it up before its delete must not bring it back): then 404 `model_not_found`.
   */
  #deploymentOf(model: Model): ModelDeployment {
    const known = this.#deps.table.get(modelKey(model))
    if (known !== undefined && known.model.uploadId === model.uploadId) return known
    if (this.#deps.forgotten(model.uploadId)) {
      throw new BerthError('model_not_found', `model "${model.modelId}" was deleted`, {
        details: { model_id: model.modelId },
      })
    }
    return this.#deps.table.of(model)
  }

  /**
   * Asks `queue` for `replicas` runners of the deployment, counted as `chargeFor` says. Short of
   * memory, it counts loaded on-demand models by what they hold now and asks again, then starts
   * evicting (`evicting`: idle on-demand models are being unloaded to make room).
   */
  reserve(
    queue: AdmissionQueue<ModelDeployment>,
    d: ModelDeployment,
    replicas: number,
  ): { readonly admission: Admission; readonly evicting: boolean } {
    const ask = () => queue.reserve(d.model.resources, replicas, this.chargeFor(d))
    let admission = ask()
    const shortOfMemory = () =>
      admission.kind === 'waits' && admission.reason === 'insufficient_memory'
    if (shortOfMemory() && this.refreshCharges()) admission = ask()
    const evicting =
      admission.kind === 'waits' && shortOfMemory() && this.evictFor(d, admission.short)
    return { admission, evicting }
  }

  /** What a deployment is counted as against the node: see `chargeOf`. */
  chargeFor(d: ModelDeployment): ResourceRequirements {
    return chargeOf(d.model, d.record.desired === 'on_demand', d.measuredBytes)
  }

  /**
   * Starts unloading the least recently used idle on-demand deployments whose memory covers
   * `shortBytes` (less what evictions under way free already), so `waiting` is admitted once
   * they are gone. Returns `false` when nothing evictable would make room (then none goes).
   */
  evictFor(waiting: ModelDeployment, shortBytes: number): boolean {
    let freeing = 0
    const candidates = []
    for (const d of this.#deps.table.all()) {
      const reservation = d.reservation
      if (d === waiting || reservation === undefined) continue
      const bytes = reservation.charged.memoryBytes * reservation.replicas
      const { state } = d.record.status
      // Unloads under way (evicted or idle) free their memory soon.
      if (state === 'unloading') freeing += bytes
      else if (
        state === 'deployed' &&
        d.record.desired === 'on_demand' &&
        d.active === 0 &&
        d.missing <= 0
      ) {
        candidates.push({ item: d, lastUsed: d.lastUsed, bytes })
      }
    }
    if (freeing >= shortBytes) return true
    const victims = pickVictims(candidates, shortBytes - freeing)
    if (victims === undefined) return false
    for (const victim of victims) {
      this.#deps.metrics.evictions.inc(victim.labels)
      this.#deps.track(this.#unloadAtRest(victim, 'evicted'))
    }
    return true
  }

  /** Unloads an on-demand deployment after its idle timeout without a request. */
  armIdle(d: ModelDeployment): void {
    const own = d.model.serving.idleTimeoutS
    const idleMs = own === null ? this.#deps.idleTimeoutMs : own * 1000
    if (d.record.desired !== 'on_demand' || idleMs <= 0) return
    const check = () => {
      const { state } = d.record.status
      if (d.record.desired !== 'on_demand') return
      // A redeploy loading its new runners: look again later.
      if (state === 'loading' && d.pool.targets.length > 0) d.scheduleIdleCheck(idleMs, check)
      if (state !== 'deployed') return
      const quietMs = this.#deps.clock.now() - d.lastUsed
      if (d.active > 0 || quietMs < idleMs) {
        d.scheduleIdleCheck(d.active > 0 ? idleMs : idleMs - quietMs, check)
        return
      }
      this.#deps.track(this.#unloadAtRest(d, 'idle'))
    }
    d.lastUsed = Math.max(d.lastUsed, this.#deps.clock.now())
    d.scheduleIdleCheck(idleMs, check)
  }

  /**
   * Returns an on-demand deployment to rest (`idle`, or `evicted` for another's load): its
   * runners stop and its capacity goes back; it stays served, and its next request loads it.
   */
  async #unloadAtRest(d: ModelDeployment, reason: 'idle' | 'evicted'): Promise<void> {
    d.supersede()
    d.moveTo('unloading', reason, null)
    await d.stopAll(this.#deps.drainMs)
    const again = this.#reloadAtRest.delete(d)
    if (d.record.status.state === 'unloading') {
      // Undeployed meanwhile: no longer served at all.
      const served = isServed(d.record.desired)
      d.moveTo('not_deployed', served ? reason : 'undeployed', null)
      // A deploy asked meanwhile: queued in the same step, so no wait sees it at rest.
      if (served && again) {
        this.#deps.load(d, 'deploy_requested')
        return
      }
    }
    this.#deps.admit()
  }

  /**
   * Serves the deployment on demand from now: at rest, it loads on its next request; loaded, it
   * may now go idle or be evicted.
   */
  serve(d: ModelDeployment): void {
    if (d.record.desired !== 'on_demand') d.record = { ...d.record, desired: 'on_demand' }
    const { status } = d.record
    if (status.state === 'not_deployed' && status.reason === 'undeployed') {
      d.reset({ ...d.record, status: { ...status, reason: 'on_demand' }, message: null })
    }
    this.armIdle(d)
  }

  /** A deploy asked while the deployment goes to rest (idle or evicted): loads it once it is. */
  loadOnceAtRest(d: ModelDeployment): void {
    this.#reloadAtRest.add(d)
  }

  /**
   * A deployment's runners are serving: it is counted from now by what they measured resident
   * (its share, in a shared process), and an on-demand one's idle clock starts.
   */
  served(d: ModelDeployment): void {
    this.#measure(d)
    this.armIdle(d)
  }

  /**
   * Counts every loaded deployment by what its runners hold now (a model's share of a shared
   * process shrinks as others join it). Returns whether any is counted as less.
   */
  refreshCharges(): boolean {
    let freed = false
    for (const d of this.#deps.table.all()) {
      const before = d.reservation?.charged.memoryBytes
      if (d.record.status.state !== 'deployed' || before === undefined) continue
      this.#measure(d)
      if ((d.reservation?.charged.memoryBytes ?? before) < before) freed = true
    }
    return freed
  }

  #measure(d: ModelDeployment): void {
    const measured = d.pool.targets.map((r) => r.residentBytes())
    if (measured.length === 0 || !measured.every((b) => b !== undefined)) return
    d.measuredBytes = Math.max(...(measured as number[]))
    d.reservation?.recharge(d.measuredBytes)
  }
}
