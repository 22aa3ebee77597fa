export interface RestartPolicyOptions {
  /** Restarts of a failing runner before the deployment is `failed`. */
  readonly maxRestarts: number
  /** First restart delay; doubles per consecutive failure, up to `maxBackoffMs`. */
  readonly backoffMs: number
  readonly maxBackoffMs: number
  /** A deployment that served this long since its last (re)start gets a fresh budget. */
  readonly resetAfterMs: number
  /**
   * Runners replaced for a request's fault (one that took its runner past `memory_gb`) within
   * `resetAfterMs`, past which the model is taken not to fit: it would otherwise reload forever.
   */
  readonly maxReplaces: number
}

/** Runners replaced for a request's fault since `since` (clock milliseconds). */
export interface ReplaceHistory {
  readonly count: number
  readonly since: number
}

export type ReplaceDecision =
  | { readonly replace: true; readonly history: ReplaceHistory }
  | { readonly replace: false; readonly why: string }

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

  /**
   * A runner a request took past its memory: replaced at once and outside the restart budget
   * (the runner is not at fault), unless that happened `maxReplaces` times within
   * `resetAfterMs`: then the model does not fit its `memory_gb`.
   */
  replace(history: ReplaceHistory, now: number): ReplaceDecision {
    const { maxReplaces, resetAfterMs } = this.#options
    const fresh = now - history.since > resetAfterMs
    const count = fresh ? 1 : history.count + 1
    if (count > maxReplaces) {
      return {
        replace: false,
        why: `the runner was replaced ${maxReplaces} times within ${resetAfterMs / 1000} s: the model does not fit its memory_gb`,
      }
    }
    return { replace: true, history: { count, since: fresh ? now : history.since } }
  }
}
