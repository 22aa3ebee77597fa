import { Kysely, PostgresDialect } from 'kysely'
import pg from 'pg'
import type { MetadataConfig } from '../../config/config.js'
import type { Database as Schema } from '../kysely/database.js'
import {
  type ConstraintViolation,
  type DialectPolicy,
  driverErrorCode,
} from '../kysely/dialect-policy.js'
import { KyselyMetadataStore } from '../kysely/kysely-metadata-store.js'

export type PostgresMetadataStoreConfig = Extract<MetadataConfig, { driver: 'postgres' }>

/** Connections per berth instance: the data plane's lookups are short, the pool need not be big. */
const DEFAULT_POOL_SIZE = 10

/**
 * PostgreSQL, for several berth instances sharing one control plane. Same queries and
 * migrations as SQLite (Kysely); concurrent writers are kept consistent by the database's
 * constraints and by single-statement updates.
 */
export const PostgresMetadataStore = {
  /**
   * Connects (optionally inside `schema`, created if missing) and migrates to the latest
   * schema. Several instances migrating at once are serialised by Kysely's advisory lock.
   */
  async open(config: PostgresMetadataStoreConfig): Promise<KyselyMetadataStore> {
    const schema = config.schema ?? 'public'
    const pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize ?? DEFAULT_POOL_SIZE,
      options: `-c search_path=${schema}`,
    })
    // An idle client's error (the server restarted) must not crash the process; the pool
    // replaces the client, and the next query reports any lasting problem.
    pool.on('error', () => undefined)
    const store = new KyselyMetadataStore(
      new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) }),
      postgresDialectPolicy(schema),
    )
    try {
      // `public` exists; creating it would need a privilege a least-privilege role lacks.
      if (config.schema !== undefined) {
        const client = await pool.connect()
        try {
          await client.query(`create schema if not exists ${quoteIdentifier(schema)}`)
        } finally {
          client.release()
        }
      }
      await store.migrate()
    } catch (err) {
      await store.close()
      throw err
    }
    return store
  },
}

/** PostgreSQL's SQLSTATE codes, and the schema berth's tables (and migration tables) live in. */
function postgresDialectPolicy(schema: string): DialectPolicy {
  return { classifyError: classifyPostgresError, migrationTableSchema: schema }
}

/** SQLSTATE classes: 23505 unique_violation, 23503 foreign_key_violation. */
function classifyPostgresError(err: unknown): ConstraintViolation {
  const code = driverErrorCode(err)
  if (code === '23505') return 'unique'
  if (code === '23503') return 'foreign_key'
  return undefined
}

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`
}
