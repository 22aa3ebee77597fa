/** How an inference request ended, as `berth_inference_requests_total` and the records count it. */
export const INFERENCE_OUTCOMES = [
  'success',
  'bad_request',
  'not_ready',
  'timeout',
  'rejected',
  'error',
] as const
export type InferenceOutcome = (typeof INFERENCE_OUTCOMES)[number]

/** Hours of inference history kept, and the most a query may ask for (Mixpeek's bound). */
export const MAX_HISTORY_HOURS = 720

export const HOUR_MS = 3_600_000

/**
 * Upper bounds, in milliseconds, of the recorded latency histogram's buckets; one more bucket
 * takes what is slower than the last. Fixed: each bucket is a column of the hourly records, so
 * other bounds need a migration.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 75, 100, 150, 250, 500, 1000, 2500, 5000, 10_000, 30_000,
]

/** Buckets of the latency histogram: one per bound and the one past the last. */
export const LATENCY_BUCKETS = LATENCY_BOUNDS_MS.length + 1

/** The hour a time falls in: whole hours since the epoch (UTC). */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS)
}

/** The histogram bucket a latency falls in (its bound is the first not below it). */
export function latencyBucketOf(ms: number): number {
  const i = LATENCY_BOUNDS_MS.findIndex((bound) => ms <= bound)
  return i === -1 ? LATENCY_BOUNDS_MS.length : i
}

/** The model a record counts, with its names as they were when it was counted. */
export interface RecordedModel {
  readonly namespaceId: string
  readonly organizationId: string
  readonly modelId: string
  readonly name: string
  readonly version: string
}

/** One model's inference traffic in one hour. */
export interface InferenceBucket extends RecordedModel {
  /** Whole hours since the epoch (see `hourOf`). */
  readonly hour: number
  /** Requests by how they ended. */
  readonly outcomes: Readonly<Record<InferenceOutcome, number>>
  /** Summed latency of the successful requests, in milliseconds. */
  readonly latencySumMs: number
  /** The successful requests per latency bucket (`LATENCY_BOUNDS_MS`), `LATENCY_BUCKETS` long. */
  readonly latencyCounts: readonly number[]
  /** Loads of the (on-demand) model that a request started. */
  readonly coldLoads: number
  /** When the first and the last request of the hour ended (ISO-8601); null: none did. */
  readonly firstRequestAt: string | null
  readonly lastRequestAt: string | null
}

/** A bucket with nothing counted yet. */
export function emptyBucket(model: RecordedModel, hour: number): InferenceBucket {
  return {
    namespaceId: model.namespaceId,
    organizationId: model.organizationId,
    modelId: model.modelId,
    name: model.name,
    version: model.version,
    hour,
    outcomes: noOutcomes(),
    latencySumMs: 0,
    latencyCounts: new Array<number>(LATENCY_BUCKETS).fill(0),
    coldLoads: 0,
    firstRequestAt: null,
    lastRequestAt: null,
  }
}

function noOutcomes(): Record<InferenceOutcome, number> {
  return Object.fromEntries(INFERENCE_OUTCOMES.map((o) => [o, 0])) as Record<
    InferenceOutcome,
    number
  >
}

/** `a` with `b`'s counts added (the model's names are `a`'s): what an upsert of `b` does. */
export function addBuckets(a: InferenceBucket, b: InferenceBucket): InferenceBucket {
  const outcomes = noOutcomes()
  for (const o of INFERENCE_OUTCOMES) outcomes[o] = a.outcomes[o] + b.outcomes[o]
  return {
    ...a,
    outcomes,
    latencySumMs: a.latencySumMs + b.latencySumMs,
    latencyCounts: a.latencyCounts.map((n, i) => n + (b.latencyCounts[i] ?? 0)),
    coldLoads: a.coldLoads + b.coldLoads,
    firstRequestAt: earliest(a.firstRequestAt, b.firstRequestAt),
    lastRequestAt: latest(a.lastRequestAt, b.lastRequestAt),
  }
}

function earliest(a: string | null, b: string | null): string | null {
  if (a === null) return b
  return b !== null && b < a ? b : a
}

function latest(a: string | null, b: string | null): string | null {
  if (a === null) return b
  return b !== null && b > a ? b : a
}

/**
 * The latency below which a fraction `q` of the histogram's requests fell, estimated as
 * Prometheus' `histogram_quantile` does: linearly within the bucket the rank falls in (from 0 for
 * the first bucket; the last finite bound for the bucket past it). `null` for an empty histogram.
 */
export function latencyQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((sum, n) => sum + n, 0)
  if (total === 0) return null
  const rank = q * total
  let below = 0
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i] ?? 0
    if (n > 0 && below + n >= rank) {
      const upper = LATENCY_BOUNDS_MS[i]
      const lower = i === 0 ? 0 : (LATENCY_BOUNDS_MS[i - 1] ?? 0)
      if (upper === undefined) return lower
      return lower + (upper - lower) * ((rank - below) / n)
    }
    below += n
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1] ?? null
}

/** One model's traffic over a window of hours. */
export interface ModelPerformance {
  readonly namespaceId: string
  readonly modelId: string
  readonly name: string
  readonly version: string
  /** Every request, whatever its outcome. */
  readonly requests: number
  readonly outcomes: Readonly<Record<InferenceOutcome, number>>
  /** Latency of the successful requests (ms); absent when none succeeded. */
  readonly latency:
    | {
        readonly avgMs: number
        readonly p50Ms: number
        readonly p90Ms: number
        readonly p99Ms: number
      }
    | undefined
  readonly coldLoads: number
  readonly firstRequestAt: string | null
  readonly lastRequestAt: string | null
}

/**
 * Each model's traffic over the buckets given (any hours, any order), one entry per namespace
 * and model, by `modelId`. Percentiles come from the merged histograms (see `latencyQuantile`).
 */
export function performanceOf(buckets: readonly InferenceBucket[]): ModelPerformance[] {
  const merged = new Map<string, InferenceBucket>()
  for (const b of buckets) {
    const key = `${b.namespaceId}/${b.modelId}`
    const known = merged.get(key)
    merged.set(key, known === undefined ? b : addBuckets(known, b))
  }
  return [...merged.values()]
    .sort(
      (a, b) => a.modelId.localeCompare(b.modelId) || a.namespaceId.localeCompare(b.namespaceId),
    )
    .map((b) => {
      const successes = b.latencyCounts.reduce((sum, n) => sum + n, 0)
      const quantile = (q: number) => latencyQuantile(b.latencyCounts, q) ?? 0
      return {
        namespaceId: b.namespaceId,
        modelId: b.modelId,
        name: b.name,
        version: b.version,
        requests: INFERENCE_OUTCOMES.reduce((sum, o) => sum + b.outcomes[o], 0),
        outcomes: b.outcomes,
        latency:
          successes === 0
            ? undefined
            : {
                avgMs: b.latencySumMs / successes,
                p50Ms: quantile(0.5),
                p90Ms: quantile(0.9),
                p99Ms: quantile(0.99),
              },
        coldLoads: b.coldLoads,
        firstRequestAt: b.firstRequestAt,
        lastRequestAt: b.lastRequestAt,
      }
    })
}
