import type { Deployment } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import type { NodeUsage } from '../scheduler/scheduler.js'
import type { DeploymentSummary } from './deployment-table.js'

/** What this server's node offers and holds, and some of its deployments. */
export interface NodeView {
  readonly usage: NodeUsage
  readonly deployments: readonly DeploymentSummary[]
}

/** A deploy's options. */
export interface DeployOptions {
  /**
   * Load fresh runners (new serving settings, a new replica count) before the old ones stop;
   * every other instance serving the model follows.
   */
  readonly reload?: boolean
}

/**
 * What the registry asks of the deployments: the control plane's use cases, without how runners
 * are started, restarted or admitted.
 */
export interface DeploymentControl {
  /**
   * Records that the model should be deployed and starts deploying it. Already deployed:
   * nothing happens (`cached`), unless `reload`. Resolves once the request is recorded, with the
   * deployment as it then stood. Throws `server_shutting_down`.
   */
  deploy(
    model: Model,
    options?: DeployOptions,
  ): Promise<{ deployment: Deployment; cached: boolean }>
  /**
   * Records that the model should not be deployed, stops its runners and releases its capacity.
   * Resolves once `not_deployed`.
   */
  undeploy(model: Model): Promise<Deployment>
  /** Undeploys and forgets the model (it is being deleted). */
  remove(model: Model): Promise<void>
  /** The deployment as this server sees it (the stored record when it never touched it). */
  deploymentOf(model: Model): Deployment
  /** The model with its deployment when this server manages it; `undefined` otherwise. */
  liveModel(namespaceId: string, modelId: string): Model | undefined
  /** Runner processes serving the model now. */
  replicasOf(model: Model): number
  /**
   * Whether every eager (pinned) deployment has settled: none still pending or loading on its way
   * to `deployed` (a failed one, or one waiting for capacity nothing will free, is settled).
   */
  pinnedSettled(): boolean
  /** The node's capacity and use, and the deployments of the namespaces in `namespaceIds`. */
  nodeView(namespaceIds?: ReadonlySet<string>): NodeView
  /**
   * Resolves when the deployment settles (`deployed`, `failed`, or `not_deployed` when that is
   * what is wanted), or after `timeoutMs` with whatever it is then.
   */
  waitUntilSettled(model: Model, timeoutMs: number): Promise<Deployment>
}
