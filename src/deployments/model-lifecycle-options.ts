import type { Logger } from 'pino'
import type { Clock } from '../domain/clock.js'
import type { CrashHook } from '../domain/crash-points.js'
import type { Model } from '../domain/model.js'
import type { ArchiveSource } from '../domain/serving-plan.js'
import type { DeploymentRecords } from '../metadata/metadata-store.js'
import type { Metrics } from '../observability/metrics.js'
import type { Scheduler } from '../scheduler/scheduler.js'

export interface ModelLifecycleOptions {
  /** Bound on starting a runner and loading the model in it; past it: `failed`/`load_timeout`. */
  readonly loadTimeoutMs: number
  /**
   * Whether a loaded runner answers one inference made from the model's signature before it
   * serves (true unless said): `deployed` then means the model answered.
   */
  readonly warmUp?: boolean
  /** Restarts of a crashing runner before `failed`. */
  readonly maxRestarts: number
  /** First restart delay; doubles per consecutive crash, up to `maxRestartBackoffMs`. */
  readonly restartBackoffMs: number
  readonly maxRestartBackoffMs?: number
  /** A runner that served this long without crashing starts a fresh restart budget. */
  readonly restartResetMs?: number
  /**
   * Runners replaced for a request's fault (one that took its runner past `memory_gb`) within
   * `restartResetMs`, past which the deployment fails (`memory_limit_exceeded`): a model that
   * outgrows its memory with every request would otherwise reload forever. 10 by default.
   */
  readonly maxReplaces?: number
  /** On undeploy, how long in-flight requests may finish before the runner is stopped. */
  readonly drainMs: number
  /**
   * How long an on-demand deployment may go without a request before its runners are unloaded,
   * unless the model sets its own `idle_timeout_s`; 0: never.
   */
  readonly idleTimeoutMs?: number
  /** Time and timers (restart backoff, recorded times); the system clock by default. */
  readonly clock?: Clock
}

export interface ModelLifecycleDeps {
  readonly metadata: Pick<DeploymentRecords, 'listModelsToReconcile' | 'setDeploymentStatus'>
  readonly scheduler: Scheduler
  /** Where a model's unpacked files are installed. */
  readonly modelDir: (model: Model) => string
  /**
   * Where runners that cannot read `modelDir` (containers on other machines,
   * `BERTH_RUNNER_FILES=fetch`) download the model's archive, asked afresh for every load; unset:
   * runners read the installed files.
   */
  readonly archiveSource?: ((model: Model) => Promise<ArchiveSource>) | undefined
  readonly metrics: Metrics
  readonly logger: Logger
  /** Crash-consistency tests kill the server here (`BERTH_TEST_CRASH_AT`); a no-op otherwise. */
  readonly crash?: CrashHook
}
