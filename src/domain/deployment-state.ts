import { BerthError } from '../errors/berth-error.js'
import type { ErrorCode } from '../errors/error-codes.js'
import type { LoadPolicy } from './load-policy.js'

/** Where a model's deployment is in its life; every state carries a reason and a time. */
export const DEPLOYMENT_STATES = [
  'not_deployed',
  'pending',
  'loading',
  'deployed',
  'unloading',
  'failed',
] as const
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number]

/** Why a deployment is in its state: machine-readable, stable like error codes. */
export const DEPLOYMENT_REASONS = [
  'never_deployed',
  'undeployed',
  // An on-demand model at rest: it loads on its next request.
  'on_demand',
  // Unloaded after its idle timeout, or to make room for another model's load.
  'idle',
  'evicted',
  'deploy_requested',
  // An on-demand model loading because a request for it arrived.
  'first_request',
  'insufficient_cpu',
  'insufficient_memory',
  'insufficient_gpu',
  // Pending while idle on-demand models are unloaded to make room for it.
  'making_room',
  'loading_model',
  'ready',
  'restarting',
  'redeploying',
  'unload_requested',
  'shutting_down',
  'runner_crashed',
  'runner_unresponsive',
  'runner_protocol_error',
  'memory_limit_exceeded',
  'load_timeout',
  'model_load_failed',
  'runtime_unavailable',
  'gpu_unavailable',
  'model_not_servable',
  'never_fits',
] as const
export type DeploymentReason = (typeof DEPLOYMENT_REASONS)[number]

export interface DeploymentStatus {
  readonly state: DeploymentState
  readonly reason: DeploymentReason
  /** ISO-8601 time the state was entered. */
  readonly since: string
}

/**
 * What the user asked for; the deployment manager works to make the state match it. `deployed`:
 * loaded and kept loaded (the `eager` load policy); `on_demand`: served, loaded when a request
 * (or a deploy) asks and unloaded when idle or evicted; `not_deployed`: not served.
 */
export type DesiredState = 'deployed' | 'on_demand' | 'not_deployed'

export const DESIRED_STATES: readonly DesiredState[] = ['deployed', 'on_demand', 'not_deployed']

/** A desired state that serves the model. */
export type ServedState = Exclude<DesiredState, 'not_deployed'>

/** What a deploy asks for under a load policy. */
export function desiredFor(policy: LoadPolicy): ServedState {
  return policy === 'eager' ? 'deployed' : 'on_demand'
}

/**
 * What a new model (uploaded, or an org model enabled) is wanted as: deployed now under its load
 * policy, or, without a deploy, served on its first request when on demand, not served when eager
 * (it waits for an explicit deploy).
 */
export function uploadDesired(deploy: boolean, policy: LoadPolicy): DesiredState {
  if (deploy) return desiredFor(policy)
  return policy === 'on_demand' ? 'on_demand' : 'not_deployed'
}

/** Whether the model is to be served (loaded now or on its first request). */
export function isServed(desired: DesiredState): boolean {
  return desired !== 'not_deployed'
}

/** A model's deployment as recorded: what is wanted, and where it is. */
export interface Deployment {
  readonly desired: DesiredState
  readonly status: DeploymentStatus
  /** Human-readable detail for the reason (e.g. the runtime's load error), or `null`. */
  readonly message: string | null
  /** When the model last became `deployed`, or `null`. */
  readonly deployedAt: string | null
}

/** Where a deployment is, without what is wanted: what a server observes and records. */
export type DeploymentObservation = Omit<Deployment, 'desired'>

/** The only legal moves; anything else is a bug or a lost race, and is refused. */
const NEXT: { readonly [S in DeploymentState]: readonly DeploymentState[] } = {
  not_deployed: ['pending'],
  // `pending` again: still waiting, for a different reason.
  pending: ['pending', 'loading', 'not_deployed', 'failed'],
  // `loading` again: a runner that crashed while loading, starting over. `pending`: a redeploy
  // that needs more capacity than is free waits for it like a new deployment.
  loading: ['loading', 'deployed', 'failed', 'unloading', 'pending'],
  // `loading`: the only runner restarting, or a redeploy loading its new runners first.
  // `deployed` again: one replica restarting (or back) while the others serve.
  deployed: ['deployed', 'unloading', 'loading', 'failed'],
  unloading: ['not_deployed', 'failed'],
  failed: ['pending', 'not_deployed'],
}

export const NEVER_DEPLOYED = (since: string): DeploymentStatus => ({
  state: 'not_deployed',
  reason: 'never_deployed',
  since,
})

/** A model that was never deployed. */
export const UNDEPLOYED = (since: string): Deployment => ({
  desired: 'not_deployed',
  status: NEVER_DEPLOYED(since),
  message: null,
  deployedAt: null,
})

/**
 * A new model's deployment as first recorded: never deployed yet, but already wanted as the
 * upload asked (see `uploadDesired`), so a crash between the record and the deploy loses no
 * request (a restart deploys what is recorded as wanted).
 */
export const NEW_DEPLOYMENT = (since: string, desired: DesiredState): Deployment => ({
  ...UNDEPLOYED(since),
  desired,
})

/**
 * A deployment recorded by an earlier server, as this one starts (it owns no runner yet, so
 * whatever was recorded starts over): wanted deployed, `pending` again; on demand, at rest
 * until its next request; otherwise `not_deployed`.
 */
export function restartedDeployment(recorded: Deployment, now: Date): Deployment {
  const since = now.toISOString()
  if (recorded.desired === 'deployed') {
    return {
      ...recorded,
      status: { state: 'pending', reason: 'deploy_requested', since },
      message: 'restarted with the server',
    }
  }
  const reason = recorded.desired === 'on_demand' ? 'on_demand' : 'undeployed'
  return { ...recorded, status: { state: 'not_deployed', reason, since }, message: null }
}

export function canTransition(from: DeploymentState, to: DeploymentState): boolean {
  return NEXT[from].includes(to)
}

/** The next status. Throws `deployment_transition_invalid` for an illegal move. */
export function transition(
  from: DeploymentStatus,
  to: DeploymentState,
  reason: DeploymentReason,
  now: Date,
): DeploymentStatus {
  if (!canTransition(from.state, to)) {
    throw new BerthError(
      'deployment_transition_invalid',
      `a deployment cannot go from ${from.state} to ${to}`,
      {
        details: { from: from.state, to },
      },
    )
  }
  return { state: to, reason, since: now.toISOString() }
}

/**
 * How a runner let its deployment down: how a serving runner ended (the scheduler's causes), or
 * why a load failed.
 */
export type RunnerFailure =
  | 'crashed'
  | 'protocol_error'
  | 'unresponsive'
  | 'memory_limit_exceeded'
  | 'request_out_of_memory'
  | 'moved'
  | 'load_timeout'
  | 'runtime_unavailable'
  | 'model_load_failed'

/**
 * The one table of what a runner failure means for its deployment: the reason it records, and
 * whether the runner is restarted (with backoff, within the restart budget), replaced (at once
 * and outside the budget: the runner was sound, a request asked more than its memory holds, and
 * that request has its answer) or the deployment is `failed` at once (retrying cannot help: the
 * same memory, the same missing runtime).
 */
export const RUNNER_FAILURES: {
  readonly [F in RunnerFailure]: {
    readonly reason: DeploymentReason
    readonly action: 'restart' | 'replace' | 'fail'
  }
} = {
  crashed: { reason: 'runner_crashed', action: 'restart' },
  protocol_error: { reason: 'runner_protocol_error', action: 'restart' },
  unresponsive: { reason: 'runner_unresponsive', action: 'restart' },
  // Past `memory_gb` while loading or idle: the model itself does not fit.
  memory_limit_exceeded: { reason: 'memory_limit_exceeded', action: 'fail' },
  // Past `memory_gb` while running requests: they did not fit; the next ones may.
  request_out_of_memory: { reason: 'memory_limit_exceeded', action: 'replace' },
  // Past its share in a shared runner process: unloaded there, it restarts in one of its own.
  moved: { reason: 'memory_limit_exceeded', action: 'replace' },
  load_timeout: { reason: 'load_timeout', action: 'fail' },
  runtime_unavailable: { reason: 'runtime_unavailable', action: 'fail' },
  model_load_failed: { reason: 'model_load_failed', action: 'fail' },
}

/** The failure a load's error stands for, by its code (`undefined`: not a berth error). */
export function loadFailureOf(code: ErrorCode | undefined): RunnerFailure {
  switch (code) {
    case 'runner_crashed':
      return 'crashed'
    case 'runner_protocol_error':
      return 'protocol_error'
    // A runner (a spare, say) that missed a ping before its load was sent: start another.
    case 'runner_unresponsive':
      return 'unresponsive'
    case 'runner_start_timeout':
    case 'runner_timeout':
      return 'load_timeout'
    case 'runner_memory_limit_exceeded':
      return 'memory_limit_exceeded'
    case 'runtime_unavailable':
      return 'runtime_unavailable'
    default:
      return 'model_load_failed'
  }
}

/** Mixpeek's four-value `deployment_status`. */
export type MixpeekDeploymentStatus = 'deployed' | 'pending' | 'failed' | 'not_deployed'

/** Mixpeek's `deployment_status`: the state, with the transitional ones shown as `pending`. */
export function mixpeekStatus(state: DeploymentState): MixpeekDeploymentStatus {
  switch (state) {
    case 'loading':
    case 'unloading':
      return 'pending'
    default:
      return state
  }
}

const FINAL: ReadonlySet<DeploymentState> = new Set(['deployed', 'failed', 'not_deployed'])
const WAITING_FOR_CAPACITY: ReadonlySet<DeploymentReason> = new Set([
  'insufficient_cpu',
  'insufficient_memory',
  'insufficient_gpu',
])

/**
 * Whether a wait on the deployment is over: a final state (`not_deployed` only when that is
 * what is wanted), or waiting for capacity that nothing under way will free (a caller waiting
 * minutes for it would learn nothing more than it can be told now).
 */
export function isSettled(deployment: Deployment): boolean {
  const { state } = deployment.status
  if (state === 'pending') return waitsForCapacity(deployment)
  // An on-demand deployment at rest (idle, evicted) is where it is meant to be.
  return FINAL.has(state) && (state !== 'not_deployed' || deployment.desired !== 'deployed')
}

/** Whether the deployment is pending for capacity that nothing under way will free. */
export function waitsForCapacity(deployment: Deployment): boolean {
  const { state, reason } = deployment.status
  return state === 'pending' && WAITING_FOR_CAPACITY.has(reason)
}
