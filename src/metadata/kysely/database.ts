/** The tables as Kysely sees them. Column names are snake_case; times are ISO-8601 text. */
export interface Database {
  organizations: OrganizationsTable
  api_keys: ApiKeysTable
  namespaces: NamespacesTable
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
