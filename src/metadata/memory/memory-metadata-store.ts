import type { ApiKey } from '../../domain/api-key.js'
import type { DeploymentObservation, DesiredState } from '../../domain/deployment-state.js'
import { addBuckets, type InferenceBucket } from '../../domain/inference-stats.js'
import type { Model, ServingSettings } from '../../domain/model.js'
import type { Namespace } from '../../domain/namespace.js'
import type { OrgModel, OrgModelValidation } from '../../domain/org-model.js'
import type { Organization, Tier } from '../../domain/organization.js'
import { compareText } from '../compare-text.js'
import type {
  Credential,
  DesiredStateRow,
  InferenceBucketQuery,
  MetadataStore,
  NamespaceChanges,
  Ref,
} from '../metadata-store.js'
import {
  apiKeyNotFound,
  modelAlreadyExists,
  namespaceNameTaken,
  namespaceNotEmpty,
  namespaceNotFound,
  organizationNameTaken,
  organizationNotFound,
  orgModelAlreadyExists,
  orgModelNotFound,
} from '../store-errors.js'

/**
 * A MetadataStore in plain maps: the fast test double and a zero-dependency dev store. Passes the
 * same contract suite as the SQL adapters; nothing survives the process.
 */
export class MemoryMetadataStore implements MetadataStore {
  readonly #organizations = new Map<string, Organization>()
  readonly #keys = new Map<string, ApiKey>()
  readonly #namespaces = new Map<string, Namespace>()
  /** Keyed by `namespaceId/modelId`. */
  readonly #models = new Map<string, Model>()
  /** Keyed by `uploadId`. */
  readonly #orgModels = new Map<string, OrgModel>()
  /** Redeploy generations, by `namespaceId/modelId`. */
  readonly #generations = new Map<string, number>()
  /** Hourly inference records, by `namespaceId/modelId/hour`. */
  readonly #buckets = new Map<string, InferenceBucket>()
  #closed = false

  async bootstrapOrganization(organization: Organization, key: ApiKey): Promise<boolean> {
    this.#assertOpen()
    if (this.#organizations.size > 0) return false
    this.#organizations.set(organization.id, organization)
    this.#keys.set(key.id, key)
    return true
  }

  async createOrganization(organization: Organization): Promise<void> {
    this.#assertOpen()
    if ([...this.#organizations.values()].some((o) => o.name === organization.name)) {
      throw organizationNameTaken(organization.name)
    }
    this.#organizations.set(organization.id, organization)
  }

  async findOrganization(ref: Ref): Promise<Organization | undefined> {
    this.#assertOpen()
    if ('id' in ref) return this.#organizations.get(ref.id)
    return [...this.#organizations.values()].find((o) => o.name === ref.name)
  }

  async listOrganizations(): Promise<Organization[]> {
    this.#assertOpen()
    return [...this.#organizations.values()].sort((a, b) => compareText(a.name, b.name))
  }

  async listApiKeys(organizationId: string): Promise<ApiKey[]> {
    this.#assertOpen()
    return [...this.#keys.values()]
      .filter((k) => k.organizationId === organizationId)
      .sort((a, b) => compareText(a.createdAt, b.createdAt) || compareText(a.id, b.id))
  }

  async setOrganizationTier(id: string, tier: Tier, updatedAt: string): Promise<Organization> {
    this.#assertOpen()
    const current = this.#organizations.get(id)
    if (current === undefined) throw organizationNotFound(id)
    const updated = { ...current, tier, updatedAt }
    this.#organizations.set(id, updated)
    return updated
  }

  async createApiKey(key: ApiKey): Promise<void> {
    this.#assertOpen()
    if (!this.#organizations.has(key.organizationId)) throw organizationNotFound(key.organizationId)
    this.#keys.set(key.id, key)
  }

  async findCredential(hash: string): Promise<Credential | undefined> {
    this.#assertOpen()
    const key = [...this.#keys.values()].find((k) => k.hash === hash)
    const organization = key && this.#organizations.get(key.organizationId)
    return key === undefined || organization === undefined ? undefined : { key, organization }
  }

  async revokeApiKey(id: string, revokedAt: string): Promise<ApiKey> {
    this.#assertOpen()
    const current = this.#keys.get(id)
    if (current === undefined) {
      throw apiKeyNotFound(id)
    }
    if (current.revokedAt !== null) return current
    const revoked = { ...current, revokedAt }
    this.#keys.set(id, revoked)
    return revoked
  }

  async createNamespace(namespace: Namespace): Promise<void> {
    this.#assertOpen()
    if (!this.#organizations.has(namespace.organizationId)) {
      throw organizationNotFound(namespace.organizationId)
    }
    const taken = [...this.#namespaces.values()].some(
      (n) => n.organizationId === namespace.organizationId && n.name === namespace.name,
    )
    if (taken) {
      throw namespaceNameTaken(namespace.name)
    }
    this.#namespaces.set(namespace.id, namespace)
  }

  async findNamespace(organizationId: string, ref: Ref): Promise<Namespace | undefined> {
    this.#assertOpen()
    return [...this.#namespaces.values()].find(
      (n) =>
        n.organizationId === organizationId &&
        ('id' in ref ? n.id === ref.id : n.name === ref.name),
    )
  }

  async listNamespaces(organizationId: string): Promise<Namespace[]> {
    this.#assertOpen()
    return [...this.#namespaces.values()]
      .filter((n) => n.organizationId === organizationId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id))
  }

  async listAllNamespaces(): Promise<Namespace[]> {
    this.#assertOpen()
    return [...this.#namespaces.values()].sort(
      (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
    )
  }

  async updateNamespace(
    organizationId: string,
    id: string,
    changes: NamespaceChanges,
  ): Promise<Namespace | undefined> {
    this.#assertOpen()
    const namespace = this.#namespaces.get(id)
    if (namespace === undefined || namespace.organizationId !== organizationId) return undefined
    const { name } = changes
    const taken = [...this.#namespaces.values()].some(
      (n) => n.organizationId === organizationId && n.id !== id && n.name === name,
    )
    if (name !== undefined && taken) throw namespaceNameTaken(name)
    const updated: Namespace = {
      ...namespace,
      ...(name === undefined ? {} : { name }),
      ...(changes.description === undefined ? {} : { description: changes.description }),
      updatedAt: changes.updatedAt,
    }
    this.#namespaces.set(id, updated)
    return updated
  }

  async deleteNamespace(organizationId: string, id: string): Promise<boolean> {
    this.#assertOpen()
    const namespace = this.#namespaces.get(id)
    if (namespace === undefined || namespace.organizationId !== organizationId) return false
    if ([...this.#models.values()].some((m) => m.namespaceId === id)) throw namespaceNotEmpty(id)
    return this.#namespaces.delete(id)
  }

  async createModel(model: Model): Promise<void> {
    this.#assertOpen()
    if (!this.#namespaces.has(model.namespaceId)) throw namespaceNotFound(model.namespaceId)
    if (model.orgUploadId !== null && !this.#orgModels.has(model.orgUploadId)) {
      throw orgModelNotFound(model.modelId)
    }
    const key = `${model.namespaceId}/${model.modelId}`
    if (this.#models.has(key)) throw modelAlreadyExists(model.namespaceId, model.modelId)
    this.#models.set(key, structuredClone(model))
  }

  async findModel(namespaceId: string, modelId: string): Promise<Model | undefined> {
    this.#assertOpen()
    const model = this.#models.get(`${namespaceId}/${modelId}`)
    return model === undefined ? undefined : structuredClone(model)
  }

  async listModels(namespaceId: string): Promise<Model[]> {
    this.#assertOpen()
    return [...this.#models.values()]
      .filter((m) => m.namespaceId === namespaceId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.modelId.localeCompare(b.modelId))
      .map((m) => structuredClone(m))
  }

  async listArchiveKeys(): Promise<Set<string>> {
    this.#assertOpen()
    return new Set([
      ...[...this.#models.values()].map((m) => m.archive.key),
      ...[...this.#orgModels.values()].map((m) => m.archive.key),
    ])
  }

  async setDeploymentStatus(
    namespaceId: string,
    modelId: string,
    observed: DeploymentObservation,
  ): Promise<boolean> {
    this.#assertOpen()
    const key = `${namespaceId}/${modelId}`
    const model = this.#models.get(key)
    if (model === undefined) return false
    const deployment = { ...structuredClone(observed), desired: model.deployment.desired }
    this.#models.set(key, { ...model, deployment })
    return true
  }

  async setDesiredState(
    namespaceId: string,
    modelId: string,
    desired: DesiredState,
  ): Promise<boolean> {
    this.#assertOpen()
    const key = `${namespaceId}/${modelId}`
    const model = this.#models.get(key)
    if (model === undefined) return false
    this.#models.set(key, { ...model, deployment: { ...model.deployment, desired } })
    return true
  }

  async setServing(
    namespaceId: string,
    modelId: string,
    serving: ServingSettings,
  ): Promise<boolean> {
    this.#assertOpen()
    const key = `${namespaceId}/${modelId}`
    const model = this.#models.get(key)
    if (model === undefined) return false
    this.#models.set(key, { ...model, serving: { ...serving } })
    return true
  }

  async listModelsToReconcile(): Promise<Model[]> {
    this.#assertOpen()
    const atRest = new Set(['not_deployed', 'failed'])
    return [...this.#models.values()]
      .filter((m) => m.deployment.desired === 'deployed' || !atRest.has(m.deployment.status.state))
      .sort(
        (a, b) =>
          a.createdAt.localeCompare(b.createdAt) ||
          a.namespaceId.localeCompare(b.namespaceId) ||
          a.modelId.localeCompare(b.modelId),
      )
      .map((m) => structuredClone(m))
  }

  async deleteModel(namespaceId: string, modelId: string): Promise<boolean> {
    this.#assertOpen()
    return this.#models.delete(`${namespaceId}/${modelId}`)
  }
  async listDesiredStates(): Promise<DesiredStateRow[]> {
    this.#assertOpen()
    return [...this.#models.values()].map((m) => ({
      namespaceId: m.namespaceId,
      modelId: m.modelId,
      uploadId: m.uploadId,
      desired: m.deployment.desired,
      generation: this.#generations.get(`${m.namespaceId}/${m.modelId}`) ?? 0,
    }))
  }

  async bumpDeployGeneration(namespaceId: string, modelId: string): Promise<number | undefined> {
    this.#assertOpen()
    const key = `${namespaceId}/${modelId}`
    if (!this.#models.has(key)) return undefined
    const next = (this.#generations.get(key) ?? 0) + 1
    this.#generations.set(key, next)
    return next
  }

  async createOrgModel(model: OrgModel): Promise<void> {
    this.#assertOpen()
    if (!this.#organizations.has(model.organizationId)) {
      throw organizationNotFound(model.organizationId)
    }
    const taken = [...this.#orgModels.values()].some(
      (m) => m.organizationId === model.organizationId && m.modelId === model.modelId,
    )
    if (taken) throw orgModelAlreadyExists(model.modelId)
    this.#orgModels.set(model.uploadId, structuredClone(model))
  }

  async findOrgModel(organizationId: string, modelId: string): Promise<OrgModel | undefined> {
    this.#assertOpen()
    const found = [...this.#orgModels.values()].find(
      (m) => m.organizationId === organizationId && m.modelId === modelId,
    )
    return found === undefined ? undefined : structuredClone(found)
  }

  async findOrgModelByUpload(uploadId: string): Promise<OrgModel | undefined> {
    this.#assertOpen()
    const found = this.#orgModels.get(uploadId)
    return found === undefined ? undefined : structuredClone(found)
  }

  async listOrgModels(organizationId: string): Promise<OrgModel[]> {
    this.#assertOpen()
    return [...this.#orgModels.values()]
      .filter((m) => m.organizationId === organizationId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.modelId.localeCompare(b.modelId))
      .map((m) => structuredClone(m))
  }

  async setOrgModelValidation(uploadId: string, validation: OrgModelValidation): Promise<boolean> {
    this.#assertOpen()
    const model = this.#orgModels.get(uploadId)
    if (model === undefined) return false
    const { sha256, sizeBytes, ...rest } = structuredClone(validation)
    this.#orgModels.set(uploadId, {
      ...model,
      ...rest,
      archive: { ...model.archive, sha256, sizeBytes },
    })
    return true
  }

  async deleteOrgModel(uploadId: string): Promise<'deleted' | 'enabled' | 'missing'> {
    this.#assertOpen()
    if (!this.#orgModels.has(uploadId)) return 'missing'
    if ([...this.#models.values()].some((m) => m.orgUploadId === uploadId)) return 'enabled'
    this.#orgModels.delete(uploadId)
    return 'deleted'
  }

  async addInferenceBuckets(buckets: readonly InferenceBucket[]): Promise<void> {
    this.#assertOpen()
    for (const b of buckets) {
      const key = `${b.namespaceId}/${b.modelId}/${b.hour}`
      const known = this.#buckets.get(key)
      this.#buckets.set(key, structuredClone(known === undefined ? b : addBuckets(known, b)))
    }
  }

  async listInferenceBuckets(query: InferenceBucketQuery): Promise<InferenceBucket[]> {
    this.#assertOpen()
    return [...this.#buckets.values()]
      .filter(
        (b) =>
          b.organizationId === query.organizationId &&
          b.namespaceId === query.namespaceId &&
          b.hour >= query.sinceHour &&
          (query.model === undefined || b.modelId === query.model || b.name === query.model),
      )
      .sort((a, b) => (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : a.hour - b.hour))
      .map((b) => structuredClone(b))
  }

  async dropInferenceBuckets(beforeHour: number): Promise<number> {
    this.#assertOpen()
    let dropped = 0
    for (const [key, b] of this.#buckets) {
      if (b.hour < beforeHour && this.#buckets.delete(key)) dropped += 1
    }
    return dropped
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('MemoryMetadataStore is closed')
  }
}
