import { setTimeout } from 'node:timers/promises'
import { type Insertable, type Kysely, Migrator, type Selectable, sql } from 'kysely'
import type { ApiKey } from '../../domain/api-key.js'
import type {
  Deployment,
  DeploymentObservation,
  DeploymentReason,
  DeploymentState,
  DesiredState,
} from '../../domain/deployment-state.js'
import type { Manifest } from '../../domain/manifest.js'
import type { Model, ServingSettings } from '../../domain/model.js'
import type { ModelFormat } from '../../domain/model-format.js'
import type { Namespace } from '../../domain/namespace.js'
import type { OrgModel, OrgModelValidation, ValidationStatus } from '../../domain/org-model.js'
import type { Organization, Tier } from '../../domain/organization.js'
import type { Credential, DesiredStateRow, MetadataStore, Ref } from '../metadata-store.js'
import { MIGRATIONS } from '../migrations/migrations.js'
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
import type {
  ApiKeysTable,
  Database,
  ModelsTable,
  NamespacesTable,
  OrganizationsTable,
  OrgModelsTable,
} from './database.js'

const MIGRATION_ATTEMPTS = 5

/** Which database constraint a driver error broke, if any; each dialect knows its own codes. */
export type ConstraintViolation = 'unique' | 'foreign_key' | undefined
export type ClassifyError = (err: unknown) => ConstraintViolation

/**
 * The MetadataStore over any Kysely dialect. Dialect adapters (`sqlite/`, `postgres/`)
 * supply the Kysely instance and the translation of their driver's constraint errors; the
 * queries and migrations are shared.
 */
export class KyselyMetadataStore implements MetadataStore {
  readonly #db: Kysely<Database>
  readonly #classify: ClassifyError
  #closing: Promise<void> | undefined

  /** Built and compiled once: it runs on every request, and building costs more than running. */
  readonly #credentialQuery: ReturnType<typeof credentialQuery>

  /** Where the migration bookkeeping tables live (PostgreSQL); the default schema otherwise. */
  readonly #schema: string | undefined

  constructor(db: Kysely<Database>, classify: ClassifyError, options: { schema?: string } = {}) {
    this.#db = db
    this.#classify = classify
    this.#schema = options.schema
    this.#credentialQuery = credentialQuery(db)
  }

  /**
   * Brings the schema up to date. Safe to run from several processes at once: Kysely runs all
   * pending migrations in one transaction (DDL is transactional on SQLite and PostgreSQL), but
   * its SQLite lock is a no-op, so two starts racing on a new file can collide; the loser's
   * transaction rolls back whole and a retry finds the work done.
   */
  async migrate(): Promise<void> {
    const migrator = new Migrator({
      db: this.#db,
      provider: { getMigrations: async () => MIGRATIONS },
      migrationTableName: 'berth_migration',
      migrationLockTableName: 'berth_migration_lock',
      // Kysely looks its tables up by name in every schema unless told which one.
      ...(this.#schema === undefined ? {} : { migrationTableSchema: this.#schema }),
    })
    for (let attempt = 1; ; attempt++) {
      const { error } = await migrator.migrateToLatest()
      if (error === undefined) return
      if (attempt >= MIGRATION_ATTEMPTS) throw error
      await setTimeout(20 + Math.random() * 80 * attempt)
    }
  }

  async bootstrapOrganization(organization: Organization, key: ApiKey): Promise<boolean> {
    try {
      return await this.#db.transaction().execute(async (trx) => {
        // One statement, so no other writer can slip in between the check and the insert.
        const inserted = await sql`
          insert into organizations (id, name, tier, created_at, updated_at)
          select ${organization.id}, ${organization.name}, ${organization.tier},
                 ${organization.createdAt}, ${organization.updatedAt}
          where not exists (select 1 from organizations)`.execute(trx)
        if (Number(inserted.numAffectedRows ?? 0) === 0) return false
        await trx.insertInto('api_keys').values(apiKeyRow(key)).execute()
        return true
      })
    } catch (err) {
      // Another instance bootstrapped at the same moment: its `default` won.
      if (this.#classify(err) === 'unique') return false
      throw err
    }
  }

  async createOrganization(organization: Organization): Promise<void> {
    try {
      await this.#db
        .insertInto('organizations')
        .values({
          id: organization.id,
          name: organization.name,
          tier: organization.tier,
          created_at: organization.createdAt,
          updated_at: organization.updatedAt,
        })
        .execute()
    } catch (err) {
      if (this.#classify(err) === 'unique') {
        throw organizationNameTaken(organization.name, err)
      }
      throw err
    }
  }

  async findOrganization(ref: Ref): Promise<Organization | undefined> {
    const query = this.#db.selectFrom('organizations').selectAll()
    const row = await ('id' in ref
      ? query.where('id', '=', ref.id)
      : query.where('name', '=', ref.name)
    ).executeTakeFirst()
    return row === undefined ? undefined : toOrganization(row)
  }

  async setOrganizationTier(id: string, tier: Tier, updatedAt: string): Promise<Organization> {
    const row = await this.#db
      .updateTable('organizations')
      .set({ tier, updated_at: updatedAt })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst()
    if (row === undefined) throw organizationNotFound(id)
    return toOrganization(row)
  }

  async createApiKey(key: ApiKey): Promise<void> {
    try {
      await this.#db.insertInto('api_keys').values(apiKeyRow(key)).execute()
    } catch (err) {
      if (this.#classify(err) === 'foreign_key') throw organizationNotFound(key.organizationId, err)
      throw err
    }
  }

  async findCredential(hash: string): Promise<Credential | undefined> {
    const query: ReturnType<typeof credentialQuery> = {
      ...this.#credentialQuery,
      parameters: [hash],
    }
    const { rows } = await this.#db.executeQuery(query)
    const row = rows[0]
    if (row === undefined) return undefined
    return {
      key: toApiKey(row),
      organization: toOrganization({
        id: row.organization_id,
        name: row.organization_name,
        tier: row.organization_tier,
        created_at: row.organization_created_at,
        updated_at: row.organization_updated_at,
      }),
    }
  }

  async revokeApiKey(id: string, revokedAt: string): Promise<ApiKey> {
    await this.#db
      .updateTable('api_keys')
      .set({ revoked_at: revokedAt })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute()
    const row = await this.#db
      .selectFrom('api_keys')
      .selectAll()
      .where('id', '=', id)
      .executeTakeFirst()
    if (row === undefined) {
      throw apiKeyNotFound(id)
    }
    return toApiKey(row)
  }

  async createNamespace(namespace: Namespace): Promise<void> {
    try {
      await this.#db
        .insertInto('namespaces')
        .values({
          id: namespace.id,
          organization_id: namespace.organizationId,
          name: namespace.name,
          description: namespace.description,
          created_at: namespace.createdAt,
          updated_at: namespace.updatedAt,
        })
        .execute()
    } catch (err) {
      const violation = this.#classify(err)
      if (violation === 'unique') {
        throw namespaceNameTaken(namespace.name, err)
      }
      if (violation === 'foreign_key') throw organizationNotFound(namespace.organizationId, err)
      throw err
    }
  }

  async findNamespace(organizationId: string, ref: Ref): Promise<Namespace | undefined> {
    const query = this.#db
      .selectFrom('namespaces')
      .selectAll()
      .where('organization_id', '=', organizationId)
    const row = await ('id' in ref
      ? query.where('id', '=', ref.id)
      : query.where('name', '=', ref.name)
    ).executeTakeFirst()
    return row === undefined ? undefined : toNamespace(row)
  }

  async listNamespaces(organizationId: string): Promise<Namespace[]> {
    const rows = await this.#db
      .selectFrom('namespaces')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .orderBy('id')
      .execute()
    return rows.map(toNamespace)
  }

  async deleteNamespace(organizationId: string, id: string): Promise<boolean> {
    try {
      const result = await this.#db
        .deleteFrom('namespaces')
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0
    } catch (err) {
      if (this.#classify(err) === 'foreign_key') throw namespaceNotEmpty(id, err)
      throw err
    }
  }

  async createModel(model: Model): Promise<void> {
    try {
      await this.#db.insertInto('models').values(modelRow(model)).execute()
    } catch (err) {
      const violation = this.#classify(err)
      if (violation === 'unique') throw modelAlreadyExists(model.namespaceId, model.modelId, err)
      if (violation === 'foreign_key') {
        // Which reference broke: the namespace, or the org model being enabled.
        const orgUploadId = model.orgUploadId
        if (orgUploadId !== null && !(await this.#orgModelExists(orgUploadId))) {
          throw orgModelNotFound(model.modelId, err)
        }
        throw namespaceNotFound(model.namespaceId, err)
      }
      throw err
    }
  }

  async #orgModelExists(uploadId: string): Promise<boolean> {
    const row = await this.#db
      .selectFrom('org_models')
      .select('upload_id')
      .where('upload_id', '=', uploadId)
      .executeTakeFirst()
    return row !== undefined
  }

  async createOrgModel(model: OrgModel): Promise<void> {
    try {
      await this.#db.insertInto('org_models').values(orgModelRow(model)).execute()
    } catch (err) {
      const violation = this.#classify(err)
      if (violation === 'unique') throw orgModelAlreadyExists(model.modelId, err)
      if (violation === 'foreign_key') throw organizationNotFound(model.organizationId, err)
      throw err
    }
  }

  async findOrgModel(organizationId: string, modelId: string): Promise<OrgModel | undefined> {
    const row = await this.#db
      .selectFrom('org_models')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return row === undefined ? undefined : toOrgModel(row)
  }

  async findOrgModelByUpload(uploadId: string): Promise<OrgModel | undefined> {
    const row = await this.#db
      .selectFrom('org_models')
      .selectAll()
      .where('upload_id', '=', uploadId)
      .executeTakeFirst()
    return row === undefined ? undefined : toOrgModel(row)
  }

  async listOrgModels(organizationId: string): Promise<OrgModel[]> {
    const rows = await this.#db
      .selectFrom('org_models')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .orderBy('created_at')
      .orderBy('model_id')
      .execute()
    return rows.map(toOrgModel)
  }

  async setOrgModelValidation(uploadId: string, validation: OrgModelValidation): Promise<boolean> {
    const result = await this.#db
      .updateTable('org_models')
      .set({
        validation_status: validation.validationStatus,
        validation_errors: JSON.stringify(validation.validationErrors),
        manifest: validation.manifest === null ? null : JSON.stringify(validation.manifest),
        archive_sha256: validation.sha256,
        archive_bytes: validation.sizeBytes,
        updated_at: validation.updatedAt,
      })
      .where('upload_id', '=', uploadId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async deleteOrgModel(uploadId: string): Promise<'deleted' | 'enabled' | 'missing'> {
    try {
      const result = await this.#db
        .deleteFrom('org_models')
        .where('upload_id', '=', uploadId)
        .executeTakeFirst()
      return Number(result.numDeletedRows) > 0 ? 'deleted' : 'missing'
    } catch (err) {
      // A namespace model still refers to it.
      if (this.#classify(err) === 'foreign_key') return 'enabled'
      throw err
    }
  }

  async findModel(namespaceId: string, modelId: string): Promise<Model | undefined> {
    const row = await this.#db
      .selectFrom('models')
      .selectAll()
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return row === undefined ? undefined : toModel(row)
  }

  async listModels(namespaceId: string): Promise<Model[]> {
    const rows = await this.#db
      .selectFrom('models')
      .selectAll()
      .where('namespace_id', '=', namespaceId)
      .orderBy('created_at')
      .orderBy('model_id')
      .execute()
    return rows.map(toModel)
  }

  async setDeploymentStatus(
    namespaceId: string,
    modelId: string,
    observed: DeploymentObservation,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('models')
      .set({
        deployment_state: observed.status.state,
        deployment_reason: observed.status.reason,
        deployment_since: observed.status.since,
        deployment_message: observed.message,
        deployed_at: observed.deployedAt,
      })
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async setDesiredState(
    namespaceId: string,
    modelId: string,
    desired: DesiredState,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('models')
      .set({ desired_state: desired })
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async setServing(
    namespaceId: string,
    modelId: string,
    serving: ServingSettings,
  ): Promise<boolean> {
    const result = await this.#db
      .updateTable('models')
      .set({
        max_batch_size: serving.maxBatchSize,
        max_queue_delay_us: serving.maxQueueDelayUs,
        replicas: serving.replicas,
      })
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return Number(result.numUpdatedRows) > 0
  }

  async listModelsToReconcile(): Promise<Model[]> {
    const rows = await this.#db
      .selectFrom('models')
      .selectAll()
      .where((eb) =>
        eb.or([
          eb('desired_state', '=', 'deployed'),
          eb('deployment_state', 'not in', ['not_deployed', 'failed']),
        ]),
      )
      .orderBy('created_at')
      .orderBy('namespace_id')
      .orderBy('model_id')
      .execute()
    return rows.map(toModel)
  }

  async listDesiredStates(): Promise<DesiredStateRow[]> {
    const rows = await this.#db
      .selectFrom('models')
      .select(['namespace_id', 'model_id', 'upload_id', 'desired_state', 'deploy_generation'])
      .execute()
    return rows.map((r) => ({
      namespaceId: r.namespace_id,
      modelId: r.model_id,
      uploadId: r.upload_id,
      desired: r.desired_state as DesiredState,
      generation: Number(r.deploy_generation),
    }))
  }

  async bumpDeployGeneration(namespaceId: string, modelId: string): Promise<number | undefined> {
    // One statement: two instances bumping at once both count.
    const row = await this.#db
      .updateTable('models')
      .set((eb) => ({ deploy_generation: eb('deploy_generation', '+', 1) }))
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .returning('deploy_generation')
      .executeTakeFirst()
    return row === undefined ? undefined : Number(row.deploy_generation)
  }

  async deleteModel(namespaceId: string, modelId: string): Promise<boolean> {
    const result = await this.#db
      .deleteFrom('models')
      .where('namespace_id', '=', namespaceId)
      .where('model_id', '=', modelId)
      .executeTakeFirst()
    return Number(result.numDeletedRows) > 0
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.destroy()
    return this.#closing
  }
}

function apiKeyRow(key: ApiKey): ApiKeysTable {
  return {
    id: key.id,
    organization_id: key.organizationId,
    key_hash: key.hash,
    label: key.label,
    created_at: key.createdAt,
    revoked_at: key.revokedAt,
  }
}

/** An API key by its hash, with its organization; the hash is the one parameter. */
function credentialQuery(db: Kysely<Database>) {
  return db
    .selectFrom('api_keys as k')
    .innerJoin('organizations as o', 'o.id', 'k.organization_id')
    .selectAll('k')
    .select([
      'o.name as organization_name',
      'o.tier as organization_tier',
      'o.created_at as organization_created_at',
      'o.updated_at as organization_updated_at',
    ])
    .where('k.key_hash', '=', '')
    .compile()
}

function orgModelRow(model: OrgModel): OrgModelsTable {
  return {
    upload_id: model.uploadId,
    organization_id: model.organizationId,
    model_id: model.modelId,
    name: model.name,
    version: model.version,
    description: model.description,
    format: model.format,
    framework: model.framework,
    task_type: model.taskType,
    num_cpus: model.resources.numCpus,
    num_gpus: model.resources.numGpus,
    memory_bytes: model.resources.memoryBytes,
    archive_key: model.archive.key,
    archive_url: model.archive.url,
    archive_sha256: model.archive.sha256,
    archive_bytes: model.archive.sizeBytes,
    validation_status: model.validationStatus,
    validation_errors: JSON.stringify(model.validationErrors),
    manifest: model.manifest === null ? null : JSON.stringify(model.manifest),
    upload_expires_at: model.uploadExpiresAt,
    created_at: model.createdAt,
    updated_at: model.updatedAt,
  }
}

function toOrgModel(row: Selectable<OrgModelsTable>): OrgModel {
  return {
    organizationId: row.organization_id,
    modelId: row.model_id,
    uploadId: row.upload_id,
    name: row.name,
    version: row.version,
    description: row.description,
    format: row.format as ModelFormat,
    framework: row.framework,
    taskType: row.task_type,
    resources: {
      numCpus: Number(row.num_cpus),
      numGpus: Number(row.num_gpus),
      memoryBytes: Number(row.memory_bytes),
    },
    archive: {
      key: row.archive_key,
      url: row.archive_url,
      sha256: row.archive_sha256,
      sizeBytes: row.archive_bytes === null ? null : Number(row.archive_bytes),
    },
    validationStatus: row.validation_status as ValidationStatus,
    validationErrors: JSON.parse(row.validation_errors) as string[],
    manifest: row.manifest === null ? null : (JSON.parse(row.manifest) as Manifest),
    uploadExpiresAt: row.upload_expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

function toOrganization(row: Selectable<OrganizationsTable>): Organization {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier as Tier,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    organizationId: row.organization_id,
    hash: row.key_hash,
    label: row.label,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  }
}

function toNamespace(row: Selectable<NamespacesTable>): Namespace {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    description: row.description,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

function modelRow(model: Model): Insertable<ModelsTable> {
  return {
    namespace_id: model.namespaceId,
    model_id: model.modelId,
    upload_id: model.uploadId,
    org_upload_id: model.orgUploadId,
    organization_id: model.organizationId,
    name: model.name,
    version: model.version,
    format: model.format,
    framework: model.framework,
    task_type: model.taskType,
    num_cpus: model.resources.numCpus,
    num_gpus: model.resources.numGpus,
    memory_bytes: model.resources.memoryBytes,
    max_batch_size: model.serving.maxBatchSize,
    max_queue_delay_us: model.serving.maxQueueDelayUs,
    replicas: model.serving.replicas,
    archive_key: model.archive.key,
    archive_url: model.archive.url,
    archive_sha256: model.archive.sha256,
    archive_bytes: model.archive.sizeBytes,
    manifest: JSON.stringify(model.manifest),
    created_at: model.createdAt,
    updated_at: model.updatedAt,
    ...deploymentColumns(model.deployment),
  }
}

function deploymentColumns(deployment: Deployment) {
  return {
    desired_state: deployment.desired,
    deployment_state: deployment.status.state,
    deployment_reason: deployment.status.reason,
    deployment_since: deployment.status.since,
    deployment_message: deployment.message,
    deployed_at: deployment.deployedAt,
  }
}

function toModel(row: Selectable<ModelsTable>): Model {
  return {
    namespaceId: row.namespace_id,
    organizationId: row.organization_id,
    orgUploadId: row.org_upload_id,
    modelId: row.model_id,
    uploadId: row.upload_id,
    name: row.name,
    version: row.version,
    format: row.format as ModelFormat,
    framework: row.framework,
    taskType: row.task_type,
    resources: {
      numCpus: Number(row.num_cpus),
      numGpus: Number(row.num_gpus),
      memoryBytes: Number(row.memory_bytes),
    },
    serving: {
      maxBatchSize: row.max_batch_size === null ? null : Number(row.max_batch_size),
      maxQueueDelayUs: Number(row.max_queue_delay_us),
      replicas: Number(row.replicas),
    },
    archive: {
      key: row.archive_key,
      url: row.archive_url,
      sha256: row.archive_sha256,
      sizeBytes: Number(row.archive_bytes),
    },
    manifest: JSON.parse(row.manifest) as Manifest,
    deployment: {
      desired: row.desired_state as DesiredState,
      status: {
        state: row.deployment_state as DeploymentState,
        reason: row.deployment_reason as DeploymentReason,
        since: row.deployment_since,
      },
      message: row.deployment_message,
      deployedAt: row.deployed_at,
    },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}
