export interface RestartPolicyOptions {
  /** Restarts of a failing runner before the deployment is `failed`. */
  readonly maxRestarts: number
  /** First restart delay; doubles per consecutive failure, up to `maxBackoffMs`. */
  readonly backoffMs: number
  readonly maxBackoffMs: number
  /** A deployment that served this long since its last (re)start gets a fresh budget. */
  readonly resetAfterMs: number
}

/** What the policy needs to know of a deployment's past. */
export interface RestartHistory {
  /** Restarts since the budget was last reset. */
  readonly restarts: number
  /** When its runners last became ready (clock milliseconds); `undefined` if never since pending. */
  readonly readySince: number | undefined
}

export type RestartDecision =
  | { readonly restart: true; readonly delayMs: number; readonly history: RestartHistory }
  | { readonly restart: false; readonly restarts: number }

/**
 * When to restart a runner that failed, and when to give up: a doubling backoff within a
 * budget of restarts, reset by a long enough stretch of serving (as Triton's load retries and
 * Kubernetes' crash-loop backoff do). Pure: time comes in as `now`.
 */
export class RestartPolicy {
  readonly #options: RestartPolicyOptions

  constructor(options: RestartPolicyOptions) {
    this.#options = options
  }

  get maxRestarts(): number {
    return this.#options.maxRestarts
  }

  decide(history: RestartHistory, now: number): RestartDecision {
    const o = this.#options
    const served = history.readySince !== undefined && now - history.readySince > o.resetAfterMs
    const restarts = (served ? 0 : history.restarts) + 1
    if (restarts > o.maxRestarts) return { restart: false, restarts }
    return {
      restart: true,
      delayMs: Math.min(o.backoffMs * 2 ** (restarts - 1), o.maxBackoffMs),
      history: { restarts, readySince: history.readySince },
    }
  }
}
