import { setTimeout } from 'node:timers/promises'
import { type Kysely, Migrator } from 'kysely'
import { MIGRATIONS } from '../migrations/migrations.js'
import type { Database } from './database.js'
import type { DialectPolicy } from './dialect-policy.js'

const MIGRATION_ATTEMPTS = 5

/**
 * Brings the schema up to date. Safe to run from several processes at once: Kysely runs all
 * pending migrations in one transaction (DDL is transactional on SQLite and PostgreSQL), but
 * its SQLite lock is a no-op, so two starts racing on a new file can collide; the loser's
 * transaction rolls back whole and a retry finds the work done.
 */
export async function migrateToLatest(db: Kysely<Database>, policy: DialectPolicy): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'berth_migration',
    migrationLockTableName: 'berth_migration_lock',
    ...(policy.migrationTableSchema === undefined
      ? {}
      : { migrationTableSchema: policy.migrationTableSchema }),
  })
  for (let attempt = 1; ; attempt++) {
    const { error } = await migrator.migrateToLatest()
    if (error === undefined) return
    if (attempt >= MIGRATION_ATTEMPTS) throw error
    await setTimeout(20 + Math.random() * 80 * attempt)
  }
}
