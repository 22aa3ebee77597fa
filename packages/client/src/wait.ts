/** A model's deployment, as the server shows it. */
export interface Deployment {
  readonly state: 'not_deployed' | 'pending' | 'loading' | 'deployed' | 'unloading' | 'failed'
  readonly desired: string
  readonly reason: string
  readonly since: string
  readonly message: string | null
  readonly replicas?: number
}

/** Reasons of a pending deployment that waits for capacity nothing under way will free. */
const WAITING_FOR_CAPACITY = new Set([
  'insufficient_cpu',
  'insufficient_memory',
  'insufficient_gpu',
])

/**
 * Whether the deployment has settled, as the server's `?wait=true` says: deployed or failed, at
 * rest as wanted (undeployed, or an on-demand model at rest), or waiting for capacity.
 */
export function isSettled(deployment: Deployment): boolean {
  const { state } = deployment
  if (state === 'pending') return WAITING_FOR_CAPACITY.has(deployment.reason)
  if (state === 'deployed' || state === 'failed') return true
  return state === 'not_deployed' && deployment.desired !== 'deployed'
}

/** A wait ran out of time before the deployment settled; `deployment` is where it stood. */
export class WaitTimeout extends Error {
  override readonly name = 'WaitTimeout'
  readonly code = 'wait_timeout'
  readonly deployment: Deployment

  constructor(namespace: string, modelId: string, deployment: Deployment) {
    super(
      `${namespace}/${modelId} did not settle in time: ${deployment.state} (${deployment.reason})`,
    )
    this.deployment = deployment
  }
}
