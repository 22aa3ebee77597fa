import type { DeploymentControl, NodeView } from '../deployments/deployment-control.js'
import { type Model, type ServingSettings, sameRunners } from '../domain/model.js'
import type { Principal } from '../domain/organization.js'
import type { ModelRecords } from '../metadata/metadata-store.js'
import type { ModelCatalog } from './model-catalog.js'

/** What a deploy request did. */
export interface DeployResult {
  readonly model: Model
  /** The model was already deployed: nothing was loaded. */
  readonly cached: boolean
}

export interface DeploymentServiceDeps {
  readonly catalog: Pick<ModelCatalog, 'get'>
  readonly metadata: Pick<ModelRecords, 'setServing'>
  readonly control: DeploymentControl
  /**
   * Gets the model's files onto this server before it deploys there: a model uploaded through
   * another instance is fetched and unpacked; one already here costs a `stat`.
   */
  readonly install: (model: Model) => Promise<void>
}

export interface DeploymentServiceOptions {
  /** Bound on `wait`; past it the answer shows the state so far. */
  readonly waitTimeoutMs: number
}

/**
 * Deploy and undeploy requests on the catalog's models: the caller's tier and namespace are
 * checked by the catalog lookup, the deployment itself is the control plane's.
 */
export class DeploymentService {
  readonly #deps: DeploymentServiceDeps
  readonly #options: DeploymentServiceOptions

  constructor(deps: DeploymentServiceDeps, options: DeploymentServiceOptions) {
    this.#deps = deps
    this.#options = options
  }

  /**
   * Deploys the model: already deployed is `cached` unless `reload` asks for a fresh runner.
   * New serving settings are recorded, and a deployed model is redeployed to apply them. With
   * `wait`, resolves once it is `deployed` or `failed` (bounded). A model uploaded through another
   * instance is fetched first. Throws `model_not_found`, and what fetching throws
   * (`stored_archive_corrupt`, the artifact store's codes).
   */
  async deploy(
    principal: Principal,
    namespaceRef: string,
    modelId: string,
    options: {
      readonly wait: boolean
      readonly reload: boolean
      readonly serving?: Partial<ServingSettings>
    },
  ): Promise<DeployResult> {
    let model = await this.#deps.catalog.get(principal, namespaceRef, modelId)
    let reload = options.reload
    if (options.serving !== undefined) {
      const serving = { ...model.serving, ...options.serving }
      if (JSON.stringify(serving) !== JSON.stringify(model.serving)) {
        await this.#deps.metadata.setServing(model.namespaceId, model.modelId, serving)
        // A new idle time, or on demand from now, needs no new runners.
        // Pinned from now: its runners are replaced by ones of its own, admitted at what it asks.
        reload ||=
          !sameRunners(serving, model.serving) ||
          (serving.loadPolicy === 'eager' && model.serving.loadPolicy !== 'eager')
        model = { ...model, serving }
      }
    }
    await this.#deps.install(model)
    return this.start(model, { wait: options.wait, reload })
  }

  /** Stops serving the model; resolves once its runners are gone. Throws `model_not_found`. */
  async undeploy(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    const model = await this.#deps.catalog.get(principal, namespaceRef, modelId)
    return { ...model, deployment: await this.#deps.control.undeploy(model) }
  }

  /**
   * Asks for a model already looked up (or just recorded) to be deployed; with `wait`, resolves
   * once it settles (bounded). Throws `server_shutting_down`.
   */
  async start(
    model: Model,
    options: { readonly wait: boolean; readonly reload: boolean },
  ): Promise<DeployResult> {
    const { control } = this.#deps
    const { cached } = await control.deploy(model, { reload: options.reload })
    const deployment = options.wait
      ? await control.waitUntilSettled(model, this.#options.waitTimeoutMs)
      : control.deploymentOf(model)
    return { model: { ...model, deployment }, cached }
  }

  /**
   * Whether the server is ready (the Open Inference Protocol's server readiness): every model
   * deployed eagerly has settled. On-demand models load when asked and do not count.
   */
  ready(): boolean {
    return this.#deps.control.pinnedSettled()
  }

  /** The node's capacity and use, and the deployments of the namespaces given (the caller's). */
  nodeView(namespaceIds?: ReadonlySet<string>): NodeView {
    return this.#deps.control.nodeView(namespaceIds)
  }

  /** Runner processes serving the model now. */
  replicasOf(model: Model): number {
    return this.#deps.control.replicasOf(model)
  }
}
