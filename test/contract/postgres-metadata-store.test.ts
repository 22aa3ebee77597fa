import { after, describe, it } from 'node:test'
import { PostgresMetadataStore } from '../../src/metadata/postgres/postgres-metadata-store.js'
import { postgresForTests, testSchemas } from '../helpers/services.js'
import { closedStoreContract, metadataStoreContract } from './metadata-store.contract.js'

const postgres = postgresForTests()
if ('skip' in postgres) {
  describe('metadata store contract: postgres', () => {
    it('needs a PostgreSQL server', { skip: postgres.skip }, () => undefined)
  })
} else {
  const schemas = testSchemas(postgres.url)
  after(() => schemas.dropAll())
  // Each store in its own schema: a fresh database as far as the store can tell.
  const open = () =>
    PostgresMetadataStore.open({ driver: 'postgres', url: postgres.url, schema: schemas.next() })
  metadataStoreContract('postgres', open)
  closedStoreContract('postgres', open)
}
