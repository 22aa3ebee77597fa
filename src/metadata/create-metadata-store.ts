import type { MetadataConfig } from '../config/config.js'
import type { MetadataStore } from './metadata-store.js'

/**
 * The only place that knows every metadata adapter. Imports lazily, so an install that does not
 * use a driver never loads it. Returns a migrated, ready store.
 */
export async function createMetadataStore(config: MetadataConfig): Promise<MetadataStore> {
  switch (config.driver) {
    case 'sqlite': {
      const { SqliteMetadataStore } = await import('./sqlite/sqlite-metadata-store.js')
      return SqliteMetadataStore.open(config)
    }
    case 'postgres': {
      const { PostgresMetadataStore } = await import('./postgres/postgres-metadata-store.js')
      return PostgresMetadataStore.open(config)
    }
  }
}
