import type { Kysely } from 'kysely'
import type { ApiKey } from '../../domain/api-key.js'
import type { DeploymentObservation, DesiredState } from '../../domain/deployment-state.js'
import type { InferenceBucket } from '../../domain/inference-stats.js'
import type { Model, ServingSettings } from '../../domain/model.js'
import type { Namespace } from '../../domain/namespace.js'
import type { OrgModel, OrgModelValidation } from '../../domain/org-model.js'
import type { Organization, Tier } from '../../domain/organization.js'
import type {
  Credential,
  DesiredStateRow,
  InferenceBucketQuery,
  MetadataStore,
  NamespaceChanges,
  Ref,
} from '../metadata-store.js'
import * as accounts from './account-queries.js'
import type { Database } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'
import * as inference from './inference-queries.js'
import { migrateToLatest } from './migrate.js'
import * as models from './model-queries.js'
import * as namespaces from './namespace-queries.js'
import * as orgModels from './org-model-queries.js'

/**
 * The MetadataStore over any Kysely dialect, composed rather than subclassed: the dialect
 * adapters (`sqlite/`, `postgres/`) build the Kysely instance and hand over their
 * `DialectPolicy`; the queries live in one module per aggregate (`*-queries.ts`) and the row
 * mappers in `rows.ts`, so this class only binds them to one database.
 */
export class KyselyMetadataStore implements MetadataStore {
  readonly #db: Kysely<Database>
  readonly #policy: DialectPolicy
  readonly #credentialQuery: accounts.CredentialQuery
  /** Credentials found while the database's change clock read the same: see `findCredential`. */
  readonly #credentials: CredentialCache | undefined
  #closing: Promise<void> | undefined

  /**
   * `changeClock`, where the database can give one, reads a number that moves whenever the
   * database may have changed (any write, by this process or another): credentials found are
   * then kept until it moves. Without one, every lookup goes to the database.
   */
  constructor(db: Kysely<Database>, policy: DialectPolicy, changeClock?: () => number) {
    this.#db = db
    this.#policy = policy
    this.#credentialQuery = accounts.compileCredentialQuery(db)
    this.#credentials = changeClock === undefined ? undefined : new CredentialCache(changeClock)
  }

  /** Brings the schema up to date; safe to run from several processes at once. */
  migrate(): Promise<void> {
    return migrateToLatest(this.#db, this.#policy)
  }

  bootstrapOrganization(organization: Organization, key: ApiKey): Promise<boolean> {
    return accounts.bootstrapOrganization(this.#db, this.#policy, organization, key)
  }

  createOrganization(organization: Organization): Promise<void> {
    return accounts.createOrganization(this.#db, this.#policy, organization)
  }

  findOrganization(ref: Ref): Promise<Organization | undefined> {
    return accounts.findOrganization(this.#db, ref)
  }

  listOrganizations(): Promise<Organization[]> {
    return accounts.listOrganizations(this.#db)
  }

  listApiKeys(organizationId: string): Promise<ApiKey[]> {
    return accounts.listApiKeys(this.#db, organizationId)
  }

  setOrganizationTier(id: string, tier: Tier, updatedAt: string): Promise<Organization> {
    return accounts.setOrganizationTier(this.#db, id, tier, updatedAt)
  }

  createApiKey(key: ApiKey): Promise<void> {
    return accounts.createApiKey(this.#db, this.#policy, key)
  }

  async findCredential(hash: string): Promise<Credential | undefined> {
    const cache = this.#credentials
    if (cache === undefined) return accounts.findCredential(this.#db, this.#credentialQuery, hash)
    // Read before the query: a change that lands while it runs moves the clock past this reading.
    const clock = cache.clock()
    const kept = cache.get(hash, clock)
    if (kept !== undefined) return kept
    const found = await accounts.findCredential(this.#db, this.#credentialQuery, hash)
    if (found !== undefined) cache.keep(hash, found, clock)
    return found
  }

  revokeApiKey(id: string, revokedAt: string): Promise<ApiKey> {
    return accounts.revokeApiKey(this.#db, id, revokedAt)
  }

  createNamespace(namespace: Namespace): Promise<void> {
    return namespaces.createNamespace(this.#db, this.#policy, namespace)
  }

  findNamespace(organizationId: string, ref: Ref): Promise<Namespace | undefined> {
    return namespaces.findNamespace(this.#db, organizationId, ref)
  }

  listNamespaces(organizationId: string): Promise<Namespace[]> {
    return namespaces.listNamespaces(this.#db, organizationId)
  }

  listAllNamespaces(): Promise<Namespace[]> {
    return namespaces.listAllNamespaces(this.#db)
  }

  updateNamespace(
    organizationId: string,
    id: string,
    changes: NamespaceChanges,
  ): Promise<Namespace | undefined> {
    return namespaces.updateNamespace(this.#db, this.#policy, organizationId, id, changes)
  }

  deleteNamespace(organizationId: string, id: string): Promise<boolean> {
    return namespaces.deleteNamespace(this.#db, this.#policy, organizationId, id)
  }

  createModel(model: Model): Promise<void> {
    return models.createModel(this.#db, this.#policy, model)
  }

  findModel(namespaceId: string, modelId: string): Promise<Model | undefined> {
    return models.findModel(this.#db, namespaceId, modelId)
  }

  listModels(namespaceId: string): Promise<Model[]> {
    return models.listModels(this.#db, namespaceId)
  }

  setServing(namespaceId: string, modelId: string, serving: ServingSettings): Promise<boolean> {
    return models.setServing(this.#db, namespaceId, modelId, serving)
  }

  deleteModel(namespaceId: string, modelId: string): Promise<boolean> {
    return models.deleteModel(this.#db, namespaceId, modelId)
  }

  listArchiveKeys(): Promise<Set<string>> {
    return models.listArchiveKeys(this.#db)
  }

  setDeploymentStatus(
    namespaceId: string,
    modelId: string,
    observed: DeploymentObservation,
  ): Promise<boolean> {
    return models.setDeploymentStatus(this.#db, namespaceId, modelId, observed)
  }

  setDesiredState(namespaceId: string, modelId: string, desired: DesiredState): Promise<boolean> {
    return models.setDesiredState(this.#db, namespaceId, modelId, desired)
  }

  listModelsToReconcile(): Promise<Model[]> {
    return models.listModelsToReconcile(this.#db)
  }

  listDesiredStates(): Promise<DesiredStateRow[]> {
    return models.listDesiredStates(this.#db)
  }

  bumpDeployGeneration(namespaceId: string, modelId: string): Promise<number | undefined> {
    return models.bumpDeployGeneration(this.#db, namespaceId, modelId)
  }

  createOrgModel(model: OrgModel): Promise<void> {
    return orgModels.createOrgModel(this.#db, this.#policy, model)
  }

  findOrgModel(organizationId: string, modelId: string): Promise<OrgModel | undefined> {
    return orgModels.findOrgModel(this.#db, organizationId, modelId)
  }

  findOrgModelByUpload(uploadId: string): Promise<OrgModel | undefined> {
    return orgModels.findOrgModelByUpload(this.#db, uploadId)
  }

  listOrgModels(organizationId: string): Promise<OrgModel[]> {
    return orgModels.listOrgModels(this.#db, organizationId)
  }

  setOrgModelValidation(uploadId: string, validation: OrgModelValidation): Promise<boolean> {
    return orgModels.setOrgModelValidation(this.#db, uploadId, validation)
  }

  deleteOrgModel(uploadId: string): Promise<'deleted' | 'enabled' | 'missing'> {
    return orgModels.deleteOrgModel(this.#db, this.#policy, uploadId)
  }

  addInferenceBuckets(buckets: readonly InferenceBucket[]): Promise<void> {
    return inference.addInferenceBuckets(this.#db, buckets)
  }

  listInferenceBuckets(query: InferenceBucketQuery): Promise<InferenceBucket[]> {
    return inference.listInferenceBuckets(this.#db, query)
  }

  dropInferenceBuckets(beforeHour: number): Promise<number> {
    return inference.dropInferenceBuckets(this.#db, beforeHour)
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.destroy()
    return this.#closing
  }
}

/** Most credentials kept; past it the cache starts over (only found keys are kept). */
const MAX_KEPT_CREDENTIALS = 10_000

/**
 * Credentials found, each with the change clock's reading before it was looked up: good while
 * the clock reads the same, so a revoked key, or an organization's new tier, counts on the very
 * next request, whoever changed it. Unknown hashes are never kept (a stranger's guesses would
 * fill it).
 */
class CredentialCache {
  readonly clock: () => number
  readonly #kept = new Map<string, { readonly credential: Credential; readonly clock: number }>()

  constructor(clock: () => number) {
    this.clock = clock
  }

  get(hash: string, clock: number): Credential | undefined {
    const kept = this.#kept.get(hash)
    return kept !== undefined && kept.clock === clock ? kept.credential : undefined
  }

  keep(hash: string, credential: Credential, clock: number): void {
    if (this.#kept.size >= MAX_KEPT_CREDENTIALS) this.#kept.clear()
    this.#kept.set(hash, { credential, clock })
  }
}
