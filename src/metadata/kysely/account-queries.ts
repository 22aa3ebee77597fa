import { type Kysely, sql } from 'kysely'
import type { ApiKey } from '../../domain/api-key.js'
import type { Organization, Tier } from '../../domain/organization.js'
import { compareText } from '../compare-text.js'
import type { Credential, Ref } from '../metadata-store.js'
import { apiKeyNotFound, organizationNameTaken, organizationNotFound } from '../store-errors.js'
import type { Database } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'
import { apiKeyRow, organizationRow, toApiKey, toOrganization } from './rows.js'

// The queries of the accounts aggregate: organizations and their API keys. Each function takes
// the database (and the dialect's policy where a driver error must be translated) and speaks
// berth's records; the contract of each is on `AccountRecords`.

export async function bootstrapOrganization(
  db: Kysely<Database>,
  policy: DialectPolicy,
  organization: Organization,
  key: ApiKey,
): Promise<boolean> {
  try {
    return await db.transaction().execute(async (trx) => {
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
    if (policy.classifyError(err) === 'unique') return false
    throw err
  }
}

export async function createOrganization(
  db: Kysely<Database>,
  policy: DialectPolicy,
  organization: Organization,
): Promise<void> {
  try {
    await db.insertInto('organizations').values(organizationRow(organization)).execute()
  } catch (err) {
    if (policy.classifyError(err) === 'unique') {
      throw organizationNameTaken(organization.name, err)
    }
    throw err
  }
}

export async function findOrganization(
  db: Kysely<Database>,
  ref: Ref,
): Promise<Organization | undefined> {
  const query = db.selectFrom('organizations').selectAll()
  const row = await ('id' in ref
    ? query.where('id', '=', ref.id)
    : query.where('name', '=', ref.name)
  ).executeTakeFirst()
  return row === undefined ? undefined : toOrganization(row)
}

/** Sorted here, not by the database: its collation (PostgreSQL's locale) would disagree with SQLite. */
export async function listOrganizations(db: Kysely<Database>): Promise<Organization[]> {
  const rows = await db.selectFrom('organizations').selectAll().execute()
  return rows.map(toOrganization).sort((a, b) => compareText(a.name, b.name))
}

export async function listApiKeys(db: Kysely<Database>, organizationId: string): Promise<ApiKey[]> {
  const rows = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('organization_id', '=', organizationId)
    // ISO times and lowercase-hex ids: every collation orders them alike.
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return rows.map(toApiKey)
}

export async function setOrganizationTier(
  db: Kysely<Database>,
  id: string,
  tier: Tier,
  updatedAt: string,
): Promise<Organization> {
  const row = await db
    .updateTable('organizations')
    .set({ tier, updated_at: updatedAt })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst()
  if (row === undefined) throw organizationNotFound(id)
  return toOrganization(row)
}

export async function createApiKey(
  db: Kysely<Database>,
  policy: DialectPolicy,
  key: ApiKey,
): Promise<void> {
  try {
    await db.insertInto('api_keys').values(apiKeyRow(key)).execute()
  } catch (err) {
    if (policy.classifyError(err) === 'foreign_key') {
      throw organizationNotFound(key.organizationId, err)
    }
    throw err
  }
}

/** An API key by its hash, with its organization, compiled once; the hash is the one parameter. */
export type CredentialQuery = ReturnType<typeof compileCredentialQuery>

/**
 * Builds the credential lookup once: it runs on every request, and building a query costs more
 * than running it.
 */
export function compileCredentialQuery(db: Kysely<Database>) {
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

export async function findCredential(
  db: Kysely<Database>,
  compiled: CredentialQuery,
  hash: string,
): Promise<Credential | undefined> {
  const query: CredentialQuery = { ...compiled, parameters: [hash] }
  const { rows } = await db.executeQuery(query)
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

export async function revokeApiKey(
  db: Kysely<Database>,
  id: string,
  revokedAt: string,
): Promise<ApiKey> {
  await db
    .updateTable('api_keys')
    .set({ revoked_at: revokedAt })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .execute()
  const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst()
  if (row === undefined) throw apiKeyNotFound(id)
  return toApiKey(row)
}
