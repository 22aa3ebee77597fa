import type { Generated } from 'kysely'

/** The tables as Kysely sees them. Column names are snake_case; times are ISO-8601 text. */
export interface Database {
  organizations: OrganizationsTable
  api_keys: ApiKeysTable
  namespaces: NamespacesTable
  models: ModelsTable
  org_models: OrgModelsTable
  inference_hourly: InferenceHourlyTable
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
  /** JSON: the node labels its runners' nodes must carry. */
  node_selector: Generated<string>
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

/**
 * The latency histogram's columns, one per bucket of `LATENCY_BOUNDS_MS` and the one past it, in
 * order (migration 0010).
 */
export const LATENCY_COLUMNS = [
  'latency_b00',
  'latency_b01',
  'latency_b02',
  'latency_b03',
  'latency_b04',
  'latency_b05',
  'latency_b06',
  'latency_b07',
  'latency_b08',
  'latency_b09',
  'latency_b10',
  'latency_b11',
  'latency_b12',
  'latency_b13',
  'latency_b14',
  'latency_b15',
  'latency_b16',
  'latency_b17',
  'latency_b18',
  'latency_b19',
  'latency_b20',
] as const
export type LatencyColumn = (typeof LATENCY_COLUMNS)[number]

/** The outcome columns: requests counted by how they ended (`INFERENCE_OUTCOMES`). */
export interface OutcomeColumns {
  success: number
  bad_request: number
  not_ready: number
  timeout: number
  rejected: number
  error: number
}

/** One model's inference traffic in one hour; counts are added to, never set. */
export type InferenceHourlyTable = {
  namespace_id: string
  model_id: string
  /** Whole hours since the epoch. */
  hour: number
  organization_id: string
  name: string
  version: string
  latency_sum_ms: number
  cold_loads: number
  first_request_at: string | null
  last_request_at: string | null
} & OutcomeColumns &
  Record<LatencyColumn, number>
