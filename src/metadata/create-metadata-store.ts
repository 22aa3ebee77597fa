import type { MetadataConfig } from '../config/config.js'
import { BerthError, isBerthError } from '../errors/berth-error.js'
import { driverReason } from '../errors/driver-reason.js'
import type { MetadataStore } from './metadata-store.js'

/**
 * The only place that knows every metadata adapter. Imports lazily, so an install that does not
 * use a driver never loads it. Returns a migrated, ready store. Throws `metadata_unavailable` when
 * the store cannot be opened (a database that refuses connections or logins, a file that cannot
 * be opened), naming the driver's reason but never the database URL: it may hold a password.
 */
export async function createMetadataStore(config: MetadataConfig): Promise<MetadataStore> {
  try {
    switch (config.driver) {
      case 'sqlite': {
        const { SqliteMetadataStore } = await import('./sqlite/sqlite-metadata-store.js')
        return await SqliteMetadataStore.open(config)
      }
      case 'postgres': {
        const { PostgresMetadataStore } = await import('./postgres/postgres-metadata-store.js')
        return await PostgresMetadataStore.open(config)
      }
    }
  } catch (err) {
    if (isBerthError(err)) throw err
    const what = config.driver === 'sqlite' ? 'the SQLite database' : 'the PostgreSQL database'
    const secrets = config.driver === 'postgres' ? [config.url] : []
    throw new BerthError(
      'metadata_unavailable',
      `cannot open ${what}: ${driverReason(err, secrets)}`,
      {
        details: { driver: config.driver },
        cause: err,
      },
    )
  }
}
