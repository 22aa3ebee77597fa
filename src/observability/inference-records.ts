import type { Logger } from 'pino'
import {
  addBuckets,
  emptyBucket,
  hourOf,
  type InferenceBucket,
  type InferenceOutcome,
  latencyBucketOf,
  MAX_HISTORY_HOURS,
  type RecordedModel,
} from '../domain/inference-stats.js'
import type { InferenceWatcher } from './metrics.js'

/** Where the recorder writes: the metadata store's `InferenceRecords`. */
export interface InferenceRecordSink {
  addInferenceBuckets(buckets: readonly InferenceBucket[]): Promise<void>
  dropInferenceBuckets(beforeHour: number): Promise<number>
}

export interface InferenceRecorderDeps {
  readonly sink: InferenceRecordSink
  /** Milliseconds since the epoch. */
  readonly now: () => number
  readonly logger: Logger
}

/** One model's counts in one hour since the last flush, added to in place. */
class Tally {
  readonly outcomes: Record<InferenceOutcome, number>
  readonly latencyCounts: number[]
  latencySumMs: number
  coldLoads: number
  /** Milliseconds since the epoch: a request's time is written out only when flushed. */
  firstMs: number | null
  lastMs: number | null

  readonly counted: InferenceBucket

  constructor(counted: InferenceBucket) {
    this.counted = counted
    this.outcomes = { ...counted.outcomes }
    this.latencyCounts = [...counted.latencyCounts]
    this.latencySumMs = counted.latencySumMs
    this.coldLoads = counted.coldLoads
    this.firstMs = counted.firstRequestAt === null ? null : Date.parse(counted.firstRequestAt)
    this.lastMs = counted.lastRequestAt === null ? null : Date.parse(counted.lastRequestAt)
  }

  bucket(): InferenceBucket {
    return {
      ...this.counted,
      outcomes: { ...this.outcomes },
      latencySumMs: this.latencySumMs,
      latencyCounts: [...this.latencyCounts],
      coldLoads: this.coldLoads,
      firstRequestAt: this.firstMs === null ? null : new Date(this.firstMs).toISOString(),
      lastRequestAt: this.lastMs === null ? null : new Date(this.lastMs).toISOString(),
    }
  }
}

/**
 * Keeps each model's inference traffic by hour: counts requests (by outcome), the successful
 * ones' latency (a sum and a fixed histogram) and cold loads in memory, and adds them to the
 * metadata store every `intervalMs`, on `flush()` and at `close()`. Only the counts since the
 * last flush are written, added to what is stored: several instances sharing one database each
 * add their own. A flush that fails keeps its counts for the next one. Each flush also drops the
 * records older than `MAX_HISTORY_HOURS`.
 */
export class InferenceRecorder implements InferenceWatcher {
  readonly #deps: InferenceRecorderDeps
  readonly #intervalMs: number
  /** By `namespaceId/modelId/hour`. */
  #pending = new Map<string, Tally>()
  /** Flushes run one after another: a flush asked for meanwhile follows the one running. */
  #flushes: Promise<void> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #closed = false
  /** The hour whose retention was applied last. */
  #prunedHour: number | undefined

  constructor(deps: InferenceRecorderDeps, options: { readonly intervalMs: number }) {
    this.#deps = deps
    this.#intervalMs = options.intervalMs
  }

  request(model: RecordedModel, outcome: InferenceOutcome, ms: number): void {
    const now = this.#deps.now()
    const tally = this.#tallyOf(model, now)
    tally.outcomes[outcome] += 1
    if (outcome === 'success') {
      tally.latencySumMs += ms
      const i = latencyBucketOf(ms)
      tally.latencyCounts[i] = (tally.latencyCounts[i] ?? 0) + 1
    }
    tally.firstMs ??= now
    tally.lastMs = now
  }

  coldLoad(model: RecordedModel): void {
    this.#tallyOf(model, this.#deps.now()).coldLoads += 1
  }

  /** Flushes every `intervalMs` until closed. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setInterval(() => void this.flush(), this.#intervalMs)
    this.#timer.unref()
  }

  /**
   * Adds what was counted until now to the store (after any flush under way). Never rejects: a
   * failure is logged, and its counts wait for the next flush.
   */
  flush(): Promise<void> {
    this.#flushes = this.#flushes.then(() => this.#flushOnce())
    return this.#flushes
  }

  /** Stops the timer and writes what is left. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.flush()
  }

  #tallyOf(model: RecordedModel, now: number): Tally {
    const hour = hourOf(now)
    const key = `${model.namespaceId}/${model.modelId}/${hour}`
    let tally = this.#pending.get(key)
    if (tally === undefined) {
      // Only the names: the model record holds much more, and this lives until the flush.
      const { namespaceId, organizationId, modelId, name, version } = model
      tally = new Tally(emptyBucket({ namespaceId, organizationId, modelId, name, version }, hour))
      this.#pending.set(key, tally)
    }
    return tally
  }

  async #flushOnce(): Promise<void> {
    const taken = this.#pending
    this.#pending = new Map()
    const buckets = [...taken.values()].map((t) => t.bucket())
    try {
      if (buckets.length > 0) await this.#deps.sink.addInferenceBuckets(buckets)
    } catch (err) {
      this.#restore(taken)
      this.#deps.logger.warn(
        { err, buckets: buckets.length },
        'could not record inference traffic; kept for the next try',
      )
      return
    }
    // Once an hour is enough: records age by the hour.
    const hour = hourOf(this.#deps.now())
    if (hour === this.#prunedHour) return
    try {
      await this.#deps.sink.dropInferenceBuckets(hour - MAX_HISTORY_HOURS + 1)
      this.#prunedHour = hour
    } catch (err) {
      this.#deps.logger.warn({ err }, 'could not drop inference records past their retention')
    }
  }

  /** Puts counts that could not be written back, adding what was counted meanwhile. */
  #restore(taken: Map<string, Tally>): void {
    for (const [key, tally] of taken) {
      const since = this.#pending.get(key)
      this.#pending.set(
        key,
        since === undefined ? tally : new Tally(addBuckets(tally.bucket(), since.bucket())),
      )
    }
  }
}
