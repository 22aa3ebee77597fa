import {
  type InferenceOutcome,
  LATENCY_BUCKETS,
  latencyBucketOf,
  latencyQuantile,
} from '../domain/inference-stats.js'
import { type ModelRef, modelKey } from '../domain/model.js'
import type { InferenceWatcher } from './metrics.js'

/** What the gauges are read from: each model this server serves or has touched, as it is now. */
export interface ModelGauges {
  readonly model: ModelRef
  /** Requests holding it now: queued, running, or waiting for it to load. */
  readonly activeRequests: number
  /** What its serving runners hold resident, last measured; `undefined` when not measured. */
  readonly residentBytes: number | undefined
}

export interface ModelHistoryDeps {
  /** Every model's gauges now (the deployments' node view). */
  readonly sample: () => Iterable<ModelGauges>
  /** Milliseconds since the epoch; `Date.now` unless given. */
  readonly now?: () => number
}

export interface ModelHistoryOptions {
  /** Width of a step, in milliseconds: 60 s unless given. */
  readonly stepMs?: number
  /** Steps kept, the current one included: 60 unless given (an hour of 60 s steps). */
  readonly keep?: number
  /** How often the gauges are sampled, in milliseconds: 5 s unless given. */
  readonly sampleMs?: number
}

/** One step of a model's history, as `GET …/models/{model_id}/history` shows it. */
export interface HistoryPoint {
  /** Start of the step (ISO-8601). */
  readonly time: string
  /** Requests that ended in the step, whatever their outcome. */
  readonly requests: number
  /** Those that did not succeed. */
  readonly errors: number
  readonly cold_loads: number
  /** Of the successful requests (ms, estimated from the histogram); null when none succeeded. */
  readonly latency_ms: {
    readonly p50: number | null
    readonly p95: number | null
    readonly p99: number | null
  }
  /** The most requests holding the model at once, as sampled in the step (0 when none). */
  readonly max_active_requests: number
  /** What its runners held resident, last sampled in the step; null when none was measured. */
  readonly resident_bytes: number | null
}

/** A step in which nothing happened (its `time` apart). */
export const IDLE_POINT: Omit<HistoryPoint, 'time'> = {
  requests: 0,
  errors: 0,
  cold_loads: 0,
  latency_ms: { p50: null, p95: null, p99: null },
  max_active_requests: 0,
  resident_bytes: null,
}

/** One model's counts in one step, added to in place. */
class Step {
  requests = 0
  errors = 0
  coldLoads = 0
  /** Successful requests per latency bucket; allocated with the step's first success. */
  latencyCounts: number[] | undefined
  maxActive = 0
  residentBytes: number | undefined

  /** Steps since the epoch. */
  readonly index: number

  constructor(index: number) {
    this.index = index
  }
}

/** Milliseconds, to the microsecond (as the analytics route rounds them). */
function rounded(value: number | null): number | null {
  return value === null ? null : Math.round(value * 1000) / 1000
}

/**
 * Each model's last hour, in memory, for charts: per step of `stepMs` (a minute), its requests,
 * errors, cold loads, the successful requests' latency histogram, the most requests holding it
 * at once and its resident memory (both sampled every `sampleMs`, and when read). Only steps in
 * which something happened (a request, a load, a busy or loaded model) are held, at most `keep`
 * per model; a model with none left in the window is dropped. Per server and lost on restart:
 * the metadata store's hourly records are what lasts.
 */
export class ModelHistory implements InferenceWatcher {
  readonly #sample: () => Iterable<ModelGauges>
  readonly #now: () => number
  readonly #stepMs: number
  readonly #keep: number
  readonly #sampleMs: number
  /** By `namespaceId/modelId`: the model's steps, oldest first, none empty of meaning. */
  readonly #models = new Map<string, Step[]>()
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(deps: ModelHistoryDeps, options: ModelHistoryOptions = {}) {
    this.#sample = deps.sample
    this.#now = deps.now ?? Date.now
    this.#stepMs = options.stepMs ?? 60_000
    this.#keep = options.keep ?? 60
    this.#sampleMs = options.sampleMs ?? 5000
  }

  /** Width of a step, in seconds. */
  get stepSeconds(): number {
    return this.#stepMs / 1000
  }

  /** How many models it holds steps of. */
  get size(): number {
    return this.#models.size
  }

  request(model: ModelRef, outcome: InferenceOutcome, ms: number): void {
    const step = this.#stepAt(modelKey(model), this.#indexOf(this.#now()))
    step.requests += 1
    if (outcome !== 'success') {
      step.errors += 1
      return
    }
    step.latencyCounts ??= new Array<number>(LATENCY_BUCKETS).fill(0)
    const i = latencyBucketOf(ms)
    step.latencyCounts[i] = (step.latencyCounts[i] ?? 0) + 1
  }

  coldLoad(model: ModelRef): void {
    this.#stepAt(modelKey(model), this.#indexOf(this.#now())).coldLoads += 1
  }

  /** Drops a deleted model's history. */
  forget(model: ModelRef): void {
    this.#models.delete(modelKey(model))
  }

  /** Samples the gauges every `sampleMs` until closed (the timer keeps no process alive). */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(() => this.sample(), this.#sampleMs)
    this.#timer.unref()
  }

  /** Stops the timer. Idempotent. */
  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Reads every model's gauges into its current step: the most active requests, the last
   * resident memory measured. A model idle and not loaded gets no step for it. Drops the steps
   * (and the models) that have left the window.
   */
  sample(): void {
    const current = this.#indexOf(this.#now())
    for (const { model, activeRequests, residentBytes } of this.#sample()) {
      const busy = activeRequests > 0 || (residentBytes !== undefined && residentBytes > 0)
      const key = modelKey(model)
      const step = busy ? this.#stepAt(key, current) : this.#heldStep(key, current)
      if (step === undefined) continue
      step.maxActive = Math.max(step.maxActive, activeRequests)
      if (residentBytes !== undefined) step.residentBytes = residentBytes
    }
    for (const key of [...this.#models.keys()]) this.#prune(key, current)
  }

  /**
   * The model's last `keep` steps, oldest first, the current (partial) one last, gauges sampled
   * now. A step with nothing in it shows zeros and nulls, so the steps are evenly spaced.
   */
  points(model: ModelRef): HistoryPoint[] {
    this.sample()
    const current = this.#indexOf(this.#now())
    const held = this.#models.get(modelKey(model)) ?? []
    const points: HistoryPoint[] = []
    let next = 0
    for (let index = current - this.#keep + 1; index <= current; index++) {
      while ((held[next]?.index ?? Number.POSITIVE_INFINITY) < index) next++
      const step = held[next]?.index === index ? held[next] : undefined
      points.push(this.#pointOf(index, step))
    }
    return points
  }

  #indexOf(ms: number): number {
    return Math.floor(ms / this.#stepMs)
  }

  /** The model's step `index` if it has one; a clock that went back counts in the newest. */
  #heldStep(key: string, index: number): Step | undefined {
    const last = this.#models.get(key)?.at(-1)
    return last !== undefined && last.index >= index ? last : undefined
  }

  /** The model's step `index`, made if need be (and the steps past the window dropped). */
  #stepAt(key: string, index: number): Step {
    const held = this.#heldStep(key, index)
    if (held !== undefined) return held
    let steps = this.#models.get(key)
    if (steps === undefined) {
      steps = []
      this.#models.set(key, steps)
    }
    const step = new Step(index)
    steps.push(step)
    this.#prune(key, index)
    return step
  }

  /** Drops the model's steps before the window that ends with step `current`; and the model. */
  #prune(key: string, current: number): void {
    const steps = this.#models.get(key)
    if (steps === undefined) return
    const first = current - this.#keep + 1
    const gone = steps.findIndex((s) => s.index >= first)
    if (gone === -1) this.#models.delete(key)
    else if (gone > 0) steps.splice(0, gone)
  }

  #pointOf(index: number, step: Step | undefined): HistoryPoint {
    const counts = step?.latencyCounts ?? []
    return {
      time: new Date(index * this.#stepMs).toISOString(),
      requests: step?.requests ?? 0,
      errors: step?.errors ?? 0,
      cold_loads: step?.coldLoads ?? 0,
      latency_ms: {
        p50: rounded(latencyQuantile(counts, 0.5)),
        p95: rounded(latencyQuantile(counts, 0.95)),
        p99: rounded(latencyQuantile(counts, 0.99)),
      },
      max_active_requests: step?.maxActive ?? 0,
      resident_bytes: step?.residentBytes === undefined ? null : Math.round(step.residentBytes),
    }
  }
}
