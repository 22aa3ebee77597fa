/**
 * Per-model inference statistics as Triton's statistics extension reports them
 * (`GET /v2/models/{m}/stats`): counts and cumulative nanoseconds, kept in this process since it
 * started (a restart begins at zero, as Triton's do). What berth cannot tell apart it reports as
 * it is: a runner call (sending the tensors to the runner process, running the model, reading
 * the outputs back) is all `compute_infer`; `compute_input` and `compute_output` count the same
 * requests with 0 ns; there is no response cache (`cache_hit`, `cache_miss` stay 0).
 */

/** A count and the nanoseconds it took together. */
export interface StatDuration {
  readonly count: number
  readonly ns: number
}

/** One batch size's executions. */
export interface BatchStats {
  readonly batch_size: number
  readonly compute_input: StatDuration
  readonly compute_infer: StatDuration
  readonly compute_output: StatDuration
}

/** A model's statistics, in Triton's field names (`name` and `version` are the caller's). */
export interface ModelStatistics {
  /** When its last request ended, in milliseconds since the epoch; 0 before any. */
  readonly last_inference: number
  /** Inferences that succeeded: a batchable request counts its rows, any other request one. */
  readonly inference_count: number
  /** Runner calls (a dynamic batch is one). */
  readonly execution_count: number
  readonly inference_stats: {
    /** Requests answered, and their time in the server from the body's decoding on. */
    readonly success: StatDuration
    /** Requests refused or failed, whatever the reason, and their time. */
    readonly fail: StatDuration
    /** Requests that ran, and their time waiting for a runner (in the batcher's queue). */
    readonly queue: StatDuration
    readonly compute_input: StatDuration
    readonly compute_infer: StatDuration
    readonly compute_output: StatDuration
    readonly cache_hit: StatDuration
    readonly cache_miss: StatDuration
  }
  /** Per batch size (in rows; 1 for a request that is not batched), its runner calls. */
  readonly batch_stats: BatchStats[]
}

/** Which model: its namespace, `model_id`, and the upload it was made from. */
export interface StatsModel {
  readonly namespaceId: string
  readonly modelId: string
  readonly uploadId: string
}

/** Batch sizes remembered per model: a client choosing a new row count each time adds none past it. */
const MAX_BATCH_SIZES = 1024

/**
 * Models whose statistics are kept: past it the one counted longest ago is dropped (deleted
 * models are never counted again; a model still served starts again from zero).
 */
const MAX_MODELS = 4096

class Counter {
  count = 0
  ns = 0
  add(ms: number): void {
    this.count += 1
    this.ns += Math.round(ms * 1e6)
  }
  get value(): StatDuration {
    return { count: this.count, ns: this.ns }
  }
}

class Counters {
  lastInference = 0
  inferences = 0
  executions = 0
  readonly success = new Counter()
  readonly fail = new Counter()
  readonly queue = new Counter()
  readonly computeInfer = new Counter()
  readonly batches = new Map<number, Counter>()
}

const ZERO: StatDuration = { count: 0, ns: 0 }

/** The statistics of the models this process serves, fed by the data plane as requests end. */
export class OipStatistics {
  readonly #models = new Map<string, Counters>()
  readonly #now: () => number
  readonly #maxModels: number

  /**
   * `now`: the wall clock, in milliseconds since the epoch; `maxModels`: how many models' statistics are
   * kept at most.
   */
  constructor(now: () => number = Date.now, maxModels = MAX_MODELS) {
    this.#now = now
    this.#maxModels = maxModels
  }

  /** A request ended: answered (`ok`) or not, after `ms` in the server. */
  finished(model: StatsModel, ok: boolean, ms: number): void {
    const c = this.#counters(model)
    ;(ok ? c.success : c.fail).add(ms)
    c.lastInference = this.#now()
  }

  /** A request ran on a runner: it waited `queueMs`, the call took `computeMs`. */
  ran(model: StatsModel, run: { queueMs: number; computeMs: number; inferences: number }): void {
    const c = this.#counters(model)
    c.queue.add(run.queueMs)
    c.computeInfer.add(run.computeMs)
    c.inferences += run.inferences
  }

  /** A runner call of `batchSize` rows took `ms`. */
  executed(model: StatsModel, batchSize: number, ms: number): void {
    const c = this.#counters(model)
    c.executions += 1
    let batch = c.batches.get(batchSize)
    if (batch === undefined && c.batches.size < MAX_BATCH_SIZES) {
      batch = new Counter()
      c.batches.set(batchSize, batch)
    }
    batch?.add(ms)
  }

  /** The model's statistics so far (all zero for one that has had no request). */
  of(model: StatsModel): ModelStatistics {
    const c = this.#models.get(keyOf(model)) ?? new Counters()
    const infer = c.computeInfer.value
    const untimed = { count: infer.count, ns: 0 }
    return {
      last_inference: c.lastInference,
      inference_count: c.inferences,
      execution_count: c.executions,
      inference_stats: {
        success: c.success.value,
        fail: c.fail.value,
        queue: c.queue.value,
        compute_input: untimed,
        compute_infer: infer,
        compute_output: untimed,
        cache_hit: ZERO,
        cache_miss: ZERO,
      },
      batch_stats: [...c.batches.entries()]
        .sort(([a], [b]) => a - b)
        .map(([size, counter]) => {
          const v = counter.value
          return {
            batch_size: size,
            compute_input: { count: v.count, ns: 0 },
            compute_infer: v,
            compute_output: { count: v.count, ns: 0 },
          }
        }),
    }
  }

  #counters(model: StatsModel): Counters {
    const key = keyOf(model)
    const counters = this.#models.get(key) ?? new Counters()
    // Most recently counted last: a deleted model (its key never counted again) is the first to
    // go once more models than `maxModels` have been counted, so memory stays bounded.
    this.#models.delete(key)
    this.#models.set(key, counters)
    if (this.#models.size > this.#maxModels) {
      const oldest = this.#models.keys().next().value
      if (oldest !== undefined) this.#models.delete(oldest)
    }
    return counters
  }
}

/** A model deleted and uploaded again under the same id is a new upload: it starts at zero. */
function keyOf(model: StatsModel): string {
  return `${model.namespaceId}/${model.modelId}/${model.uploadId}`
}
