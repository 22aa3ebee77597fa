import { closeSync, mkdirSync, openSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { Kysely, SqliteDialect } from 'kysely'
import type { MetadataConfig } from '../../config/config.js'
import type { Database as Schema } from '../kysely/database.js'
import {
  type ConstraintViolation,
  type DialectPolicy,
  driverErrorCode,
} from '../kysely/dialect-policy.js'
import { KyselyMetadataStore } from '../kysely/kysely-metadata-store.js'

export type SqliteMetadataStoreConfig = Extract<MetadataConfig, { driver: 'sqlite' }>

/**
 * The embedded default: one SQLite file (WAL mode), shared safely with the admin CLI and other
 * processes on the same machine. The shared Kysely store over better-sqlite3, with SQLite's
 * error codes.
 */
export const SqliteMetadataStore = {
  /**
   * Opens (creating if needed) the database file and migrates it to the latest schema.
   * `keepCredentials: false` looks every credential up (bench/credentials.ts compares the two).
   */
  async open(
    config: SqliteMetadataStoreConfig,
    { keepCredentials = true }: { readonly keepCredentials?: boolean } = {},
  ): Promise<KyselyMetadataStore> {
    if (config.path !== ':memory:') {
      // The file holds every key's hash: readable by this user only. SQLite gives its -wal and
      // -shm files the database file's mode. (Both modes apply only to what is created here.)
      mkdirSync(dirname(config.path), { recursive: true, mode: 0o700 })
      closeSync(openSync(config.path, 'a', 0o600))
    }
    const sqlite = new Database(config.path)
    // WAL lets the CLI write while the server reads; busy_timeout makes writers queue instead of
    // failing with SQLITE_BUSY when two processes write at once.
    sqlite.pragma('journal_mode = WAL')
    sqlite.pragma('busy_timeout = 5000')
    sqlite.pragma('foreign_keys = ON')
    sqlite.pragma('synchronous = NORMAL')
    const database = withStatementCache(sqlite)
    const store = new KyselyMetadataStore(
      new Kysely<Schema>({ dialect: new SqliteDialect({ database }) }),
      sqliteDialectPolicy,
      keepCredentials ? changeClock(sqlite, () => database.writes) : undefined,
    )
    try {
      await store.migrate()
    } catch (err) {
      await store.close()
      throw err
    }
    return store
  },
}

/**
 * A number that moves whenever the database may have changed: a write this connection starts
 * (`writes`), or a commit by any other connection, this machine's admin CLI included (SQLite's
 * `data_version`, which moves only for other connections' commits). Reading it is one native
 * call, far cheaper than the credential lookup it lets the store skip.
 */
function changeClock(sqlite: Database.Database, writes: () => number): () => number {
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck()
  let clock = 0
  let seenVersion: unknown
  let seenWrites = -1
  return () => {
    const version = dataVersion.get()
    const written = writes()
    if (version !== seenVersion || written !== seenWrites) {
      clock += 1
      seenVersion = version
      seenWrites = written
    }
    return clock
  }
}

/** SQLite keeps everything in the one file: only its constraint error codes are its own. */
const sqliteDialectPolicy: DialectPolicy = { classifyError: classifySqliteError }

/** Distinct SQL texts kept prepared; berth issues far fewer, so this only bounds a surprise. */
const MAX_CACHED_STATEMENTS = 500

/**
 * Kysely's SQLite driver prepares every statement anew, and parsing SQL was the largest cost of
 * a metadata query (profiled on the inference path). better-sqlite3 runs a statement to
 * completion synchronously, so one prepared statement per SQL text can be reused safely.
 */
function withStatementCache(sqlite: Database.Database) {
  const cache = new Map<string, Database.Statement>()
  return {
    /**
     * Statements prepared that may write: Kysely's driver prepares each statement just before it
     * runs, so this counts this connection's writes as they start.
     */
    writes: 0,
    prepare(sql: string): Database.Statement {
      let statement = cache.get(sql)
      if (statement === undefined) {
        if (cache.size >= MAX_CACHED_STATEMENTS) cache.clear()
        statement = sqlite.prepare(sql)
        cache.set(sql, statement)
      }
      // Not `reader`: an UPDATE … RETURNING reads too.
      if (!statement.readonly) this.writes += 1
      return statement
    },
    close(): void {
      cache.clear()
      sqlite.close()
    },
  }
}

function classifySqliteError(err: unknown): ConstraintViolation {
  const code = driverErrorCode(err)
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return 'unique'
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key'
  return undefined
}
