import type { Logger } from 'pino'
import type { Clock } from '../domain/clock.js'
import {
  type DeploymentReason,
  loadFailureOf,
  RUNNER_FAILURES,
  type RunnerFailure,
} from '../domain/deployment-state.js'
import { isBerthError } from '../errors/berth-error.js'
import type { Metrics } from '../observability/metrics.js'
import type { Runner, RunnerEnd } from '../scheduler/scheduler.js'
import type { ModelDeployment } from './model-deployment.js'
import type { RestartPolicy } from './restart-policy.js'

export interface FailureHandlingDeps {
  readonly policy: RestartPolicy
  readonly clock: Clock
  readonly metrics: Metrics
  readonly logger: Logger
  /** Ends the deployment as `failed` with `reason`, releasing what it held. */
  readonly fail: (d: ModelDeployment, reason: DeploymentReason, message: string) => void
  /** Loads the replicas the deployment lacks again, under `epoch` (a restart). */
  readonly restart: (d: ModelDeployment, epoch: number) => void
  readonly closed: () => boolean
}

/**
 * What a runner's failure does to its deployment, by the domain's table of failures
 * (`RUNNER_FAILURES`) and the `RestartPolicy`: restart after a backoff while the budget lasts,
 * replace at once, or fail.
 */
export class FailureHandling {
  readonly #deps: FailureHandlingDeps

  constructor(deps: FailureHandlingDeps) {
    this.#deps = deps
  }

  /** A load failed: its error says which failure it stands for. */
  loadFailed(d: ModelDeployment, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err)
    this.#deps.logger.warn({ err, model: d.key }, 'deployment: the model did not load')
    this.#onFailure(d, loadFailureOf(isBerthError(err) ? err.code : undefined), message)
  }

  /** A runner ended; one that was stopped, or no longer serves, is nobody's failure. */
  runnerEnded(d: ModelDeployment, runner: Runner, end: RunnerEnd): void {
    if (end.cause === 'stopped' || this.#deps.closed() || !d.drop(runner)) return
    this.#deps.logger.warn({ model: d.key, ...end }, 'deployment: runner ended')
    this.#onFailure(d, end.cause, end.message)
  }

  /**
   * What the failure table says: restart after a backoff while the budget lasts, replace at
   * once (a request's fault: the budget is for the runner's own), or fail.
   */
  #onFailure(d: ModelDeployment, failure: RunnerFailure, message: string): void {
    const { reason, action } = RUNNER_FAILURES[failure]
    if (action === 'fail') {
      this.#deps.fail(d, reason, message)
      return
    }
    let delayMs = 0
    if (action === 'replace') {
      const decision = this.#deps.policy.replace(d.replaces, this.#deps.clock.now())
      if (!decision.replace) {
        this.#deps.fail(d, reason, `${message} (${decision.why})`)
        return
      }
      d.replaces = decision.history
    } else {
      const decision = this.#deps.policy.decide(d.restarts, this.#deps.clock.now())
      if (!decision.restart) {
        const gaveUp = `${message} (gave up after ${this.#deps.policy.maxRestarts} restarts)`
        this.#deps.fail(d, reason, gaveUp)
        return
      }
      d.restarts = decision.history
      delayMs = decision.delayMs
    }
    this.#deps.metrics.runnerRestarts.inc(d.labels)
    const serving = d.pool.targets.length
    if (serving === 0) d.moveTo('loading', 'restarting', message)
    else {
      const wanted = d.reservation?.replicas ?? serving
      d.moveTo('deployed', 'restarting', `${serving} of ${wanted} replicas serving; ${message}`)
    }
    d.scheduleRestart(delayMs, (epoch) => this.#deps.restart(d, epoch))
  }
}
