import type { Insertable, Selectable } from 'kysely'
import type { ApiKey } from '../../domain/api-key.js'
import type {
  Deployment,
  DeploymentObservation,
  DeploymentReason,
  DeploymentState,
  DesiredState,
} from '../../domain/deployment-state.js'
import type { LoadPolicy } from '../../domain/load-policy.js'
import type { Manifest } from '../../domain/manifest.js'
import type {
  Model,
  ModelDescriptor,
  NodeSelector,
  ResourceRequirements,
  ServingSettings,
  StoredArchive,
} from '../../domain/model.js'
import type { ModelFormat } from '../../domain/model-format.js'
import type { Namespace } from '../../domain/namespace.js'
import type { OrgModel, OrgModelValidation, ValidationStatus } from '../../domain/org-model.js'
import type { Organization, Tier } from '../../domain/organization.js'
import type { DesiredStateRow } from '../metadata-store.js'
import type {
  ApiKeysTable,
  ModelsTable,
  NamespacesTable,
  OrganizationsTable,
  OrgModelsTable,
} from './database.js'

// Domain records ↔ table rows, and nothing else: no query runs here. Numbers are read through
// `Number()` because PostgreSQL's driver answers bigint columns as strings.

export function organizationRow(organization: Organization): OrganizationsTable {
  return {
    id: organization.id,
    name: organization.name,
    tier: organization.tier,
    created_at: organization.createdAt,
    updated_at: organization.updatedAt,
  }
}

export function toOrganization(row: Selectable<OrganizationsTable>): Organization {
  return {
    id: row.id,
    name: row.name,
    tier: row.tier as Tier,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

export function apiKeyRow(key: ApiKey): ApiKeysTable {
  return {
    id: key.id,
    organization_id: key.organizationId,
    key_hash: key.hash,
    label: key.label,
    created_at: key.createdAt,
    revoked_at: key.revokedAt,
  }
}

export function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    organizationId: row.organization_id,
    hash: row.key_hash,
    label: row.label,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  }
}

export function namespaceRow(namespace: Namespace): NamespacesTable {
  return {
    id: namespace.id,
    organization_id: namespace.organizationId,
    name: namespace.name,
    description: namespace.description,
    created_at: namespace.createdAt,
    updated_at: namespace.updatedAt,
  }
}

export function toNamespace(row: Selectable<NamespacesTable>): Namespace {
  return {
    id: row.id,
    organizationId: row.organization_id,
    name: row.name,
    description: row.description,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

/**
 * What describes a model in both `models` and `org_models`: the two tables repeat the same
 * block of columns, so one pair of mappers serves both. Only the archive's hash and size differ:
 * an org model's are unknown until its upload is confirmed.
 */
interface Described<S extends string | null, B extends number | null> extends ModelDescriptor {
  readonly archive: {
    readonly key: string
    readonly url: string
    readonly sha256: S
    readonly sizeBytes: B
  }
}

type DescriptionColumn = 'name' | 'version' | 'format' | 'framework' | 'task_type' | ResourceColumn
type ResourceColumn = 'num_cpus' | 'num_gpus' | 'memory_bytes'
type ArchiveColumn = 'archive_key' | 'archive_url' | 'archive_sha256' | 'archive_bytes'

function descriptionColumns<S extends string | null, B extends number | null>(
  model: Described<S, B>,
) {
  return {
    name: model.name,
    version: model.version,
    format: model.format,
    framework: model.framework,
    task_type: model.taskType,
    ...resourceColumns(model.resources),
    ...archiveColumns(model.archive),
  }
}

function resourceColumns(resources: ResourceRequirements): Pick<ModelsTable, ResourceColumn> {
  return {
    num_cpus: resources.numCpus,
    num_gpus: resources.numGpus,
    memory_bytes: resources.memoryBytes,
  }
}

function archiveColumns<S extends string | null, B extends number | null>(
  archive: Described<S, B>['archive'],
) {
  return {
    archive_key: archive.key,
    archive_url: archive.url,
    archive_sha256: archive.sha256,
    archive_bytes: archive.sizeBytes,
  }
}

/** The shared description, less the archive (see `toArchive`). */
function toDescription(row: Pick<ModelsTable, DescriptionColumn>): ModelDescriptor {
  return {
    name: row.name,
    version: row.version,
    format: row.format as ModelFormat,
    framework: row.framework,
    taskType: row.task_type,
    resources: toResources(row),
  }
}

function toResources(row: Pick<ModelsTable, ResourceColumn>): ResourceRequirements {
  return {
    numCpus: Number(row.num_cpus),
    numGpus: Number(row.num_gpus),
    memoryBytes: Number(row.memory_bytes),
  }
}

function toArchive(row: Pick<ModelsTable, ArchiveColumn>): StoredArchive
function toArchive(row: Pick<OrgModelsTable, ArchiveColumn>): OrgModel['archive']
function toArchive(row: Pick<OrgModelsTable, ArchiveColumn>): OrgModel['archive'] {
  return {
    key: row.archive_key,
    url: row.archive_url,
    sha256: row.archive_sha256,
    sizeBytes: row.archive_bytes === null ? null : Number(row.archive_bytes),
  }
}

export function modelRow(model: Model): Insertable<ModelsTable> {
  return {
    namespace_id: model.namespaceId,
    model_id: model.modelId,
    upload_id: model.uploadId,
    org_upload_id: model.orgUploadId,
    organization_id: model.organizationId,
    ...descriptionColumns(model),
    ...servingColumns(model.serving),
    manifest: JSON.stringify(model.manifest),
    created_at: model.createdAt,
    updated_at: model.updatedAt,
    ...deploymentColumns(model.deployment),
  }
}

export function toModel(row: Selectable<ModelsTable>): Model {
  return {
    namespaceId: row.namespace_id,
    organizationId: row.organization_id,
    orgUploadId: row.org_upload_id,
    modelId: row.model_id,
    uploadId: row.upload_id,
    ...toDescription(row),
    serving: {
      maxBatchSize: row.max_batch_size === null ? null : Number(row.max_batch_size),
      maxQueueDelayUs: Number(row.max_queue_delay_us),
      replicas: Number(row.replicas),
      loadPolicy: row.load_policy as LoadPolicy,
      idleTimeoutS: row.idle_timeout_s === null ? null : Number(row.idle_timeout_s),
      nodeSelector: JSON.parse(row.node_selector) as NodeSelector,
    },
    archive: toArchive(row),
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

export function servingColumns(
  serving: ServingSettings,
): Pick<
  ModelsTable,
  'max_batch_size' | 'max_queue_delay_us' | 'replicas' | 'load_policy' | 'idle_timeout_s'
> & { node_selector: string } {
  return {
    max_batch_size: serving.maxBatchSize,
    max_queue_delay_us: serving.maxQueueDelayUs,
    replicas: serving.replicas,
    load_policy: serving.loadPolicy,
    idle_timeout_s: serving.idleTimeoutS,
    node_selector: JSON.stringify(serving.nodeSelector),
  }
}

function deploymentColumns(deployment: Deployment) {
  return { desired_state: deployment.desired, ...observationColumns(deployment) }
}

/** Where a deployment is; the desired state is a column of its own, never written with these. */
export function observationColumns(observed: DeploymentObservation) {
  return {
    deployment_state: observed.status.state,
    deployment_reason: observed.status.reason,
    deployment_since: observed.status.since,
    deployment_message: observed.message,
    deployed_at: observed.deployedAt,
  }
}

export function toDesiredStateRow(
  row: Pick<
    Selectable<ModelsTable>,
    'namespace_id' | 'model_id' | 'upload_id' | 'desired_state' | 'deploy_generation'
  >,
): DesiredStateRow {
  return {
    namespaceId: row.namespace_id,
    modelId: row.model_id,
    uploadId: row.upload_id,
    desired: row.desired_state as DesiredState,
    generation: Number(row.deploy_generation),
  }
}

export function orgModelRow(model: OrgModel): OrgModelsTable {
  return {
    upload_id: model.uploadId,
    organization_id: model.organizationId,
    model_id: model.modelId,
    ...descriptionColumns(model),
    description: model.description,
    validation_status: model.validationStatus,
    validation_errors: JSON.stringify(model.validationErrors),
    manifest: model.manifest === null ? null : JSON.stringify(model.manifest),
    upload_expires_at: model.uploadExpiresAt,
    created_at: model.createdAt,
    updated_at: model.updatedAt,
  }
}

export function toOrgModel(row: Selectable<OrgModelsTable>): OrgModel {
  return {
    organizationId: row.organization_id,
    modelId: row.model_id,
    uploadId: row.upload_id,
    ...toDescription(row),
    description: row.description,
    archive: toArchive(row),
    validationStatus: row.validation_status as ValidationStatus,
    validationErrors: JSON.parse(row.validation_errors) as string[],
    manifest: row.manifest === null ? null : (JSON.parse(row.manifest) as Manifest),
    uploadExpiresAt: row.upload_expires_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

/** What confirming an upload changes: the outcome, and the archive's hash and size. */
export function validationColumns(
  validation: OrgModelValidation,
): Pick<
  OrgModelsTable,
  | 'validation_status'
  | 'validation_errors'
  | 'manifest'
  | 'archive_sha256'
  | 'archive_bytes'
  | 'updated_at'
> {
  return {
    validation_status: validation.validationStatus,
    validation_errors: JSON.stringify(validation.validationErrors),
    manifest: validation.manifest === null ? null : JSON.stringify(validation.manifest),
    archive_sha256: validation.sha256,
    archive_bytes: validation.sizeBytes,
    updated_at: validation.updatedAt,
  }
}
