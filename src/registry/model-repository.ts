import type { DeploymentState } from '../domain/deployment-state.js'
import type { Model } from '../domain/model.js'
import type { Principal } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import type { DeploymentService } from './deployment-service.js'
import {
  compareVersions,
  type ModelCatalog,
  modelNotFound,
  versionsNamed,
} from './model-catalog.js'

/** Triton's model states, as its repository index names them. */
type RepositoryState = 'READY' | 'LOADING' | 'UNLOADING' | 'UNAVAILABLE'

/** One model version in the repository index. */
export interface RepositoryEntry {
  readonly name: string
  readonly version: string
  readonly state: RepositoryState
  /** Empty when ready; else berth's deployment reason, and its message when there is one. */
  readonly reason: string
}

const STATES: Readonly<Record<DeploymentState, RepositoryState>> = {
  deployed: 'READY',
  pending: 'LOADING',
  loading: 'LOADING',
  unloading: 'UNLOADING',
  not_deployed: 'UNAVAILABLE',
  failed: 'UNAVAILABLE',
}

/** The model's entry in the repository index. */
function repositoryEntry(model: Model): RepositoryEntry {
  const { status, message } = model.deployment
  const state = STATES[status.state]
  const reason =
    state === 'READY' ? '' : message === null ? status.reason : `${status.reason}: ${message}`
  return { name: model.name, version: model.version, state, reason }
}

/**
 * Triton's model repository extension over a namespace's models: the index, and load and unload
 * mapped onto deploy and undeploy. A model is named by its name or its `model_id`, as everywhere
 * on `/v2`.
 */
export class ModelRepository {
  readonly #catalog: Pick<ModelCatalog, 'list'>
  readonly #deployments: Pick<DeploymentService, 'deploy' | 'undeploy'>

  constructor(deps: {
    readonly catalog: Pick<ModelCatalog, 'list'>
    readonly deployments: Pick<DeploymentService, 'deploy' | 'undeploy'>
  }) {
    this.#catalog = deps.catalog
    this.#deployments = deps.deployments
  }

  /** Every version of every model of the namespace (only the ready ones with `readyOnly`). */
  async index(
    principal: Principal,
    namespaceRef: string,
    readyOnly: boolean,
  ): Promise<RepositoryEntry[]> {
    const { models } = await this.#catalog.list(principal, namespaceRef)
    return models
      .map(repositoryEntry)
      .filter((e) => !readyOnly || e.state === 'READY')
      .sort((a, b) => a.name.localeCompare(b.name) || compareVersions(a.version, b.version))
  }

  /**
   * Deploys the model (a `model_id`, or a name: its highest version) and waits until it is
   * deployed, bounded as a deploy with `wait` is. Resolves its entry once `READY`. Throws
   * `model_not_found`, `model_load_failed` (400) when its deployment failed, `model_not_ready`
   * (503, with the state and reason) when it is still on its way (waiting for capacity, or
   * loading past the bound): the load goes on, and the index shows when it is done.
   */
  async load(principal: Principal, namespaceRef: string, name: string): Promise<RepositoryEntry> {
    const [target] = await this.modelsNamed(principal, namespaceRef, name)
    const { model } = await this.#deployments.deploy(
      principal,
      target.namespaceId,
      target.modelId,
      {
        wait: true,
        reload: false,
      },
    )
    const entry = repositoryEntry(model)
    const { status, message } = model.deployment
    const details = { model_id: model.modelId, state: status.state, reason: status.reason }
    if (status.state === 'failed') {
      throw new BerthError(
        'model_load_failed',
        `model "${model.modelId}" failed to load (${status.reason})${message === null ? '' : `: ${message}`}`,
        { details },
      )
    }
    if (entry.state !== 'READY') {
      throw new BerthError(
        'model_not_ready',
        `model "${model.modelId}" is ${status.state} (${status.reason}); its load goes on: see POST /v2/repository/index`,
        { details },
      )
    }
    return entry
  }

  /**
   * Undeploys the model: a `model_id`, or every version of a name that is served (deployed, or
   * on demand). Resolves their entries once their runners are gone. Throws `model_not_found`.
   */
  async unload(
    principal: Principal,
    namespaceRef: string,
    name: string,
  ): Promise<RepositoryEntry[]> {
    const versions = await this.modelsNamed(principal, namespaceRef, name)
    const served = versions.filter((m) => m.deployment.desired !== 'not_deployed')
    const done = await Promise.all(
      served.map((m) => this.#deployments.undeploy(principal, m.namespaceId, m.modelId)),
    )
    return done.map(repositoryEntry)
  }

  /**
   * The models a `/v2` name means: the one whose `model_id` it is, else every version of that
   * name, highest first. Throws `model_not_found` when there is none.
   */
  async modelsNamed(
    principal: Principal,
    namespaceRef: string,
    name: string,
  ): Promise<[Model, ...Model[]]> {
    const { namespace, models } = await this.#catalog.list(principal, namespaceRef)
    const byId = models.find((m) => m.modelId === name)
    const [first, ...rest] = byId === undefined ? versionsNamed(models, name) : [byId]
    if (first === undefined) throw modelNotFound(namespace, name)
    return [first, ...rest]
  }
}
