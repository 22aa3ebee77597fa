import type { ApiKey } from '../domain/api-key.js'
import type { DeploymentObservation, DesiredState } from '../domain/deployment-state.js'
import type { InferenceBucket } from '../domain/inference-stats.js'
import type { Model, ServingSettings } from '../domain/model.js'
import type { Namespace } from '../domain/namespace.js'
import type { OrgModel, OrgModelValidation } from '../domain/org-model.js'
import type { Organization, Tier } from '../domain/organization.js'

/** A model's desired deployment state, by key. */
export interface DesiredStateRow {
  readonly namespaceId: string
  readonly modelId: string
  /** Names the model's files on every instance. */
  readonly uploadId: string
  readonly desired: DesiredState
  /** Redeploys asked so far (see `bumpDeployGeneration`). */
  readonly generation: number
}

/** An API key and the organization it belongs to. */
export interface Credential {
  readonly key: ApiKey
  readonly organization: Organization
}

/** Look something up by its id or by its unique name. */
export type Ref = { readonly id: string } | { readonly name: string }

/**
 * Durable record of organizations and their API keys, namespaces, models with their deployments,
 * the organization model registry, and the models' inference traffic by hour: one port with one contract suite, typed as the
 * intersection of one narrow interface per aggregate so that each service declares only the
 * slice it uses (`AccountService` takes `AccountRecords`).
 *
 * Every method may be called concurrently, also from other processes sharing the same database
 * (the admin CLI writes while the server runs); uniqueness is enforced by the database, never by
 * a read-then-write in the caller. Not in the port: transactions, connections, SQL.
 * Timestamps are ISO-8601 strings chosen by the caller.
 */
export interface MetadataStore
  extends AccountRecords,
    NamespaceRecords,
    ModelRecords,
    DeploymentRecords,
    OrgModelRecords,
    InferenceRecords {
  /** Releases the connection. Idempotent; other calls fail afterwards. */
  close(): Promise<void>
}

/** Organizations and their API keys. */
export interface AccountRecords {
  /**
   * Creates the `default` organization and its first key in one step, only if the store holds
   * no organization at all. Resolves `false` (and writes nothing) otherwise. Safe to race.
   */
  bootstrapOrganization(organization: Organization, key: ApiKey): Promise<boolean>

  /** Adds an organization. Throws `organization_name_taken` when the name is in use. */
  createOrganization(organization: Organization): Promise<void>

  /** The organization with this id or name, or `undefined`. */
  findOrganization(ref: Ref): Promise<Organization | undefined>

  /** Every organization, by name. */
  listOrganizations(): Promise<Organization[]>

  /** Changes the tier. Throws `organization_not_found`. Idempotent. */
  setOrganizationTier(id: string, tier: Tier, updatedAt: string): Promise<Organization>

  /** Adds an API key. The organization must exist (`organization_not_found`). */
  createApiKey(key: ApiKey): Promise<void>

  /** The organization's keys, revoked ones too, oldest first (then by id). */
  listApiKeys(organizationId: string): Promise<ApiKey[]>

  /**
   * The key whose hash is `hash`, revoked or not, with its organization (one lookup: it runs on
   * every request), or `undefined`.
   */
  findCredential(hash: string): Promise<Credential | undefined>

  /**
   * Marks the key revoked. Throws `api_key_not_found`. Idempotent: revoking twice keeps the
   * first `revokedAt`.
   */
  revokeApiKey(id: string, revokedAt: string): Promise<ApiKey>
}

/** What a namespace update changes; `updatedAt` always. */
export interface NamespaceChanges {
  readonly name?: string
  readonly description?: string | null
  readonly updatedAt: string
}

/** An organization's namespaces. */
export interface NamespaceRecords {
  /** Adds a namespace. Throws `namespace_name_taken` when the org already has that name. */
  createNamespace(namespace: Namespace): Promise<void>

  /** The organization's namespace with this id or name, or `undefined` (also for other orgs'). */
  findNamespace(organizationId: string, ref: Ref): Promise<Namespace | undefined>

  /** The organization's namespaces, oldest first. */
  listNamespaces(organizationId: string): Promise<Namespace[]>

  /** Every organization's namespaces, oldest first: for the operator's views (`/metrics`) only. */
  listAllNamespaces(): Promise<Namespace[]>

  /**
   * Renames the organization's namespace or changes its description (a field left out stays),
   * and resolves it as it is now; `undefined` when there is none. Throws `namespace_name_taken`.
   */
  updateNamespace(
    organizationId: string,
    id: string,
    changes: NamespaceChanges,
  ): Promise<Namespace | undefined>

  /**
   * Removes the organization's namespace. Resolves `false` when there was none; throws
   * `namespace_not_empty` while it holds models (checked by the database, so race-free).
   */
  deleteNamespace(organizationId: string, id: string): Promise<boolean>
}

/** A namespace's models: what each model is and how it is served (its catalog record). */
export interface ModelRecords {
  /**
   * Adds a model. Throws `model_already_exists` when the namespace already has its `modelId`,
   * `namespace_not_found` when the namespace no longer exists, `org_model_not_found` when the
   * org model it enables (`orgUploadId`) no longer exists.
   */
  createModel(model: Model): Promise<void>

  /** The namespace's model with this id, or `undefined`. */
  findModel(namespaceId: string, modelId: string): Promise<Model | undefined>

  /** The namespace's models, oldest first. */
  listModels(namespaceId: string): Promise<Model[]>

  /** Records the model's serving settings. Resolves `false` when the model no longer exists. */
  setServing(namespaceId: string, modelId: string, serving: ServingSettings): Promise<boolean>

  /** Removes the model record. Resolves `false` when there was none. */
  deleteModel(namespaceId: string, modelId: string): Promise<boolean>

  /**
   * Every archive key a record holds, the models' and the org models' (a presigned upload's
   * before it arrives included): an archive not among them belongs to no one.
   */
  listArchiveKeys(): Promise<Set<string>>
}

/**
 * What is wanted of each model's deployment and where it is: the desired state is written on a
 * user's request, the observed state by the deployment manager, and every instance follows the
 * desired states.
 */
export interface DeploymentRecords {
  /**
   * Records where the model's deployment is (state, reason, since, message, deployed_at), leaving
   * the desired state alone. Resolves `false` when the model no longer exists. Last write wins.
   */
  setDeploymentStatus(
    namespaceId: string,
    modelId: string,
    observed: DeploymentObservation,
  ): Promise<boolean>

  /**
   * Records what is wanted of the model's deployment: the one field every berth instance follows,
   * written only on a user's request, never by an instance reporting its state. Resolves `false`
   * when the model no longer exists.
   */
  setDesiredState(namespaceId: string, modelId: string, desired: DesiredState): Promise<boolean>

  /**
   * Every model, in any namespace, whose desired state is `deployed` or whose recorded state is
   * not at rest (`not_deployed`, `failed`): what a starting server must reconcile.
   */
  listModelsToReconcile(): Promise<Model[]>

  /**
   * What is wanted of every model, in any namespace: one short row each, read by every instance
   * every few seconds to follow the others (a model absent here was deleted).
   */
  listDesiredStates(): Promise<DesiredStateRow[]>

  /**
   * Records that a redeploy was asked (new serving settings, `?reload=true`): every instance
   * serving an older generation redeploys. Resolves the new generation, `undefined` when the
   * model no longer exists.
   */
  bumpDeployGeneration(namespaceId: string, modelId: string): Promise<number | undefined>
}

/** The organization model registry: models uploaded once, then enabled in its namespaces. */
export interface OrgModelRecords {
  /**
   * Adds a model to the organization registry (at presign time, `pending`). Throws
   * `model_already_exists` when the organization has its `model_id`.
   */
  createOrgModel(model: OrgModel): Promise<void>

  /** The organization's model with this `model_id`, or `undefined`. */
  findOrgModel(organizationId: string, modelId: string): Promise<OrgModel | undefined>

  /**
   * The org model of an upload, whatever its organization: callers check the organization (or,
   * for berth's signed upload URL, the signature is the authority).
   */
  findOrgModelByUpload(uploadId: string): Promise<OrgModel | undefined>

  /** The organization's models, oldest first. */
  listOrgModels(organizationId: string): Promise<OrgModel[]>

  /** Records the outcome of validating the uploaded archive. Resolves `false` when gone. */
  setOrgModelValidation(uploadId: string, validation: OrgModelValidation): Promise<boolean>

  /**
   * Removes the org model unless a namespace enables it (checked by the database itself, so no
   * enable can slip in between).
   */
  deleteOrgModel(uploadId: string): Promise<'deleted' | 'enabled' | 'missing'>
}

/** Which hourly inference records to read: one namespace of one organization, from an hour on. */
export interface InferenceBucketQuery {
  readonly organizationId: string
  readonly namespaceId: string
  /** The first hour wanted (whole hours since the epoch). */
  readonly sinceHour: number
  /** Only the model whose `modelId` or whose name this is (every version of it). */
  readonly model?: string | undefined
}

/**
 * Each model's inference traffic by hour, as the servers count it (`InferenceBucket`). Several
 * instances sharing the database add their own counts: never a read-then-write.
 */
export interface InferenceRecords {
  /**
   * Adds each bucket's counts to the stored bucket of its model and hour (creating it; the
   * model's names stay those first written), all of them or none. At most one bucket per
   * model and hour in one call.
   */
  addInferenceBuckets(buckets: readonly InferenceBucket[]): Promise<void>

  /** The buckets the query selects, by `modelId` then hour. */
  listInferenceBuckets(query: InferenceBucketQuery): Promise<InferenceBucket[]>

  /** Removes the buckets of hours before `beforeHour` (retention); resolves how many. */
  dropInferenceBuckets(beforeHour: number): Promise<number>
}
