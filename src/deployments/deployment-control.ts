import type { Deployment } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'

/** A deploy or undeploy asked of this server, or one it follows from the store. */
export interface RequestOrigin {
  /**
   * `true`: the store already wants this (another instance was asked); the desired state is not
   * written again, so a newer request elsewhere is never overwritten.
   */
  readonly follow?: boolean
}

/** A deploy's options: a redeploy (`reload`), asked here or followed, of a known generation. */
export interface DeployOptions extends RequestOrigin {
  readonly reload?: boolean
  /** Following the store: the redeploy generation this deploy brings the runners to. */
  readonly generation?: number
}

/**
 * What the registry asks of the deployments: the control plane's use cases, without how runners
 * are started, restarted or admitted.
 */
export interface DeploymentControl {
  /**
   * Asks for the model to be deployed. Already deployed: nothing happens (`cached`), unless
   * `reload` asks for fresh runners, loaded before the old ones stop. Resolves once the request
   * is recorded, with the deployment as it then stood. Throws `server_shutting_down`.
   */
  deploy(
    model: Model,
    options?: DeployOptions,
  ): Promise<{ deployment: Deployment; cached: boolean }>
  /** Stops the model's runners and releases its capacity. Resolves once `not_deployed`. */
  undeploy(model: Model, origin?: RequestOrigin): Promise<Deployment>
  /** Undeploys and forgets the model (it is being deleted). */
  remove(model: Model, origin?: RequestOrigin): Promise<void>
  /** The deployment as this server sees it (the stored record when it never touched it). */
  deploymentOf(model: Model): Deployment
  /** The model with its deployment when this server manages it; `undefined` otherwise. */
  liveModel(namespaceId: string, modelId: string): Model | undefined
  /** Runner processes serving the model now. */
  replicasOf(model: Model): number
  /**
   * Resolves when the deployment settles (`deployed`, `failed`, or `not_deployed` when that is
   * what is wanted), or after `timeoutMs` with whatever it is then.
   */
  waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment>
}
