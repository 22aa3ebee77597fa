import type { Deployment } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import { BerthError } from '../errors/berth-error.js'

/** 503 `model_not_ready`, saying where the deployment is. */
export function notReady(model: Model, deployment: Deployment): BerthError {
  const { status, message } = deployment
  return new BerthError(
    'model_not_ready',
    `model "${model.modelId}" is ${status.state} (${status.reason})${message === null ? '' : `: ${message}`}`,
    { details: { model_id: model.modelId, state: status.state, reason: status.reason } },
  )
}
