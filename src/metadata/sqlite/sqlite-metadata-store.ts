import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { MetadataConfig } from '../../config/config.js'
import type { Database as Schema } from '../kysely/database.js'
import { type ConstraintViolation, KyselyMetadataStore } from '../kysely/kysely-metadata-store.js'

export type SqliteMetadataStoreConfig = Extract<MetadataConfig, { driver: 'sqlite' }>

/**
 * The embedded default: one SQLite file (WAL mode), shared safely with the admin CLI and other
 * processes on the same machine.
 */
export class SqliteMetadataStore extends KyselyMetadataStore {
  /** Opens (creating if needed) the database file and migrates it to the latest schema. */
  static async open(config: SqliteMetadataStoreConfig): Promise<SqliteMetadataStore> {
    if (config.path !== ':memory:') mkdirSync(dirname(config.path), { recursive: true })
    const sqlite = new Database(config.path)
    // WAL lets the CLI write while the server reads; busy_timeout makes writers queue instead of
    // failing with SQLITE_BUSY when two processes write at once.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    sqlite.pragma('synchronous = NORMAL')
    const store = new SqliteMetadataStore(
      new Kysely<Schema>({ dialect: new SqliteDialect({ database: sqlite }) }),
      classifySqliteError,
    )
    try {
      await store.migrate()
    } catch (err) {
      await store.close()
      throw err
    }
    return store
  }
}

function classifySqliteError(err: unknown): ConstraintViolation {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return 'unique'
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key'
  return undefined
}
