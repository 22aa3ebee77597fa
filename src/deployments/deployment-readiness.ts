import type { Deployment, DeploymentReason, DeploymentState } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import { BerthError } from '../errors/berth-error.js'

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

/** 503 `model_not_ready`, saying where the deployment is. */
export function notReady(model: Model, deployment: Deployment): BerthError {
  const { status, message } = deployment
  return new BerthError(
    'model_not_ready',
    `model "${model.modelId}" is ${status.state} (${status.reason})${message === null ? '' : `: ${message}`}`,
    { details: { model_id: model.modelId, state: status.state, reason: status.reason } },
  )
}
