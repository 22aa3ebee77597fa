import type { Generated } from 'kysely'

/** The tables as Kysely sees them. Column names are snake_case; times are ISO-8601 text. */
export interface Database {
  organizations: OrganizationsTable
  api_keys: ApiKeysTable
  namespaces: NamespacesTable
  models: ModelsTable
  org_models: OrgModelsTable
}

export interface OrganizationsTable {
  id: string
  name: string
  tier: string
  created_at: string
  updated_at: string
}

export interface ApiKeysTable {
  id: string
  organization_id: string
  key_hash: string
  label: string | null
  created_at: string
  revoked_at: string | null
}

export interface NamespacesTable {
  id: string
  organization_id: string
  name: string
  description: string | null
  created_at: string
  updated_at: string
}

export interface ModelsTable {
  namespace_id: string
  model_id: string
  upload_id: string
  organization_id: string
  name: string
  version: string
  format: string
  framework: string | null
  task_type: string | null
  num_cpus: number
  num_gpus: number
  /** bigint: PostgreSQL's driver answers it as a string. */
  memory_bytes: number | string
  archive_key: string
  archive_url: string
  archive_sha256: string
  archive_bytes: number | string
  /** JSON text of the Manifest. */
  manifest: string
  created_at: string
  updated_at: string
  desired_state: string
  deployment_state: string
  deployment_reason: string
  deployment_since: string
  deployment_message: string | null
  deployed_at: string | null
  max_batch_size: number | null
  max_queue_delay_us: number
  replicas: number
  load_policy: string
  idle_timeout_s: number | null
  /** Set when the model is an org model enabled in this namespace. */
  org_upload_id: string | null
  /** Redeploys asked through any instance (default 0 on insert). */
  deploy_generation: Generated<number>
}

export interface OrgModelsTable {
  upload_id: string
  organization_id: string
  model_id: string
  name: string
  version: string
  description: string | null
  format: string
  framework: string | null
  task_type: string | null
  num_cpus: number
  num_gpus: number
  memory_bytes: number | string
  archive_key: string
  archive_url: string
  archive_sha256: string | null
  archive_bytes: number | string | null
  validation_status: string
  /** JSON array of strings. */
  validation_errors: string
  /** JSON text of the Manifest, once validation passed. */
  manifest: string | null
  upload_expires_at: string
  created_at: string
  updated_at: string
}
