import type { ArtifactKey, ArtifactStore } from '../artifacts/artifact-store.js'
import type { DeploymentControl } from '../deployments/deployment-control.js'
import type { CrashHook } from '../domain/crash-points.js'
import { MODEL_VERSION_PATTERN, type Model, modelIdOf } from '../domain/model.js'
import type { Namespace } from '../domain/namespace.js'
import { assertCustomModelsEnabled, type Principal } from '../domain/organization.js'
import { BerthError } from '../errors/berth-error.js'
import type { ModelRecords } from '../metadata/metadata-store.js'
import type { NamespaceService } from '../namespaces/namespace-service.js'
import type { InstalledModels } from './installed-models.js'

export interface ModelCatalogDeps {
  readonly metadata: Pick<ModelRecords, 'findModel' | 'listModels' | 'deleteModel'>
  readonly artifacts: Pick<ArtifactStore, 'delete'>
  readonly namespaces: Pick<NamespaceService, 'get'>
  readonly installed: Pick<InstalledModels, 'forgetLocally'>
  /** Models this server runs, with their deployment as it is now. */
  readonly deployments: Pick<DeploymentControl, 'liveModel' | 'deploymentOf' | 'remove'>
  /** Crash-consistency tests kill the server here (`BERTH_TEST_CRASH_AT`); a no-op otherwise. */
  readonly crash?: CrashHook
}

/**
 * The custom models of namespaces, as this server sees them: listed, looked up (also by an Open
 * Inference Protocol name), deleted. Every call checks the caller's tier first
 * (`custom_models_not_enabled`), then the namespace (`namespace_not_found`).
 */
export class ModelCatalog {
  readonly #deps: ModelCatalogDeps

  constructor(deps: ModelCatalogDeps) {
    this.#deps = deps
  }

  /** The namespace a custom-model call acts on: 403 for other tiers, then 404. */
  async namespaceFor(principal: Principal, namespaceRef: string): Promise<Namespace> {
    assertCustomModelsEnabled(principal)
    return this.#deps.namespaces.get(principal, namespaceRef)
  }

  /** The namespace's models, oldest first. */
  async list(
    principal: Principal,
    namespaceRef: string,
  ): Promise<{ namespace: Namespace; models: Model[] }> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const models = await this.#deps.metadata.listModels(namespace.id)
    return { namespace, models: models.map((m) => this.#current(m)) }
  }

  /** Throws `model_not_found`. */
  async get(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    // The hot path of inference (the endpoint URL carries the namespace id): a model this server
    // runs, in the caller's organization, needs no query at all. Its namespace exists: a
    // namespace that holds models cannot be deleted.
    assertCustomModelsEnabled(principal)
    const { deployments, metadata } = this.#deps
    const running = deployments.liveModel(namespaceRef, modelId)
    if (running !== undefined && running.organizationId === principal.organizationId) return running
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const live = deployments.liveModel(namespace.id, modelId)
    if (live !== undefined) return live
    const model = await metadata.findModel(namespace.id, modelId)
    if (model === undefined) throw modelNotFound(namespace, modelId)
    return this.#current(model)
  }

  /**
   * The model an Open Inference Protocol name means: a `model_id`, or a model name standing for
   * its highest deployed version (its highest version when none is deployed); with `version`,
   * that exact version. Throws `model_not_found`.
   */
  async resolve(
    principal: Principal,
    namespaceRef: string,
    name: string,
    version: string | undefined,
  ): Promise<Model> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    if (version !== undefined) {
      if (!MODEL_VERSION_PATTERN.test(version)) throw modelNotFound(namespace, `${name}@${version}`)
      return this.get(principal, namespace.id, modelIdOf(name, version))
    }
    const { metadata } = this.#deps
    const byId = await metadata.findModel(namespace.id, name)
    if (byId !== undefined) return this.#current(byId)
    const versions = versionsNamed(await metadata.listModels(namespace.id), name).map((m) =>
      this.#current(m),
    )
    const chosen = versions.find((m) => m.deployment.status.state === 'deployed') ?? versions[0]
    if (chosen === undefined) throw modelNotFound(namespace, name)
    return chosen
  }

  /** Every version of the model named `name` in the namespace, highest first. */
  async versionsOf(model: Model): Promise<string[]> {
    const models = await this.#deps.metadata.listModels(model.namespaceId)
    return versionsNamed(models, model.name).map((m) => m.version)
  }

  /**
   * Undeploys the model, removes its record, then its stored archive (unless it is an enabled
   * org model's, which the organization keeps) and its unpacked files. Throws `model_not_found`.
   */
  async delete(principal: Principal, namespaceRef: string, modelId: string): Promise<Model> {
    const namespace = await this.namespaceFor(principal, namespaceRef)
    const { metadata, deployments, artifacts, installed } = this.#deps
    const model = await metadata.findModel(namespace.id, modelId)
    if (model !== undefined) await deployments.remove(model)
    // Gone already, or deleted by a concurrent request between the two calls.
    if (model === undefined || !(await metadata.deleteModel(namespace.id, modelId))) {
      throw modelNotFound(namespace, modelId)
    }
    this.#deps.crash?.('delete_recorded')
    if (model.orgUploadId === null) await artifacts.delete(model.archive.key as ArtifactKey)
    await installed.forgetLocally(model)
    return model
  }

  /** The model with its deployment as this server runs it. */
  #current(model: Model): Model {
    return { ...model, deployment: this.#deps.deployments.deploymentOf(model) }
  }
}

/** Orders `MAJOR.MINOR.PATCH` versions numerically. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The versions of the model named `name` among `models`, highest first. */
export function versionsNamed<M extends Model>(models: readonly M[], name: string): M[] {
  return models.filter((m) => m.name === name).sort((a, b) => compareVersions(b.version, a.version))
}

export function modelNotFound(namespace: Namespace, modelId: string): BerthError {
  return new BerthError('model_not_found', `model "${modelId}" not found`, {
    details: { namespace_id: namespace.id, model_id: modelId },
  })
}
