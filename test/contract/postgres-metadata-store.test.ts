import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { newId } from '../../src/domain/ids.js'
import { PostgresMetadataStore } from '../../src/metadata/postgres/postgres-metadata-store.js'
import { modelRecord } from '../fixtures/model-records.js'
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

  it('postgres: records survive closing and opening again (a restart)', async () => {
    const schema = schemas.next()
    const first = await PostgresMetadataStore.open({
      driver: 'postgres',
      url: postgres.url,
      schema,
    })
    const now = new Date().toISOString()
    const org = {
      id: newId('org'),
      name: 'survivor',
      tier: 'enterprise' as const,
      createdAt: now,
      updatedAt: now,
    }
    await first.createOrganization(org)
    const ns = {
      id: newId('ns'),
      organizationId: org.id,
      name: 'kept',
      description: null,
      createdAt: now,
      updatedAt: now,
    }
    await first.createNamespace(ns)
    const model = modelRecord(ns)
    await first.createModel(model)
    await first.setDesiredState(ns.id, model.modelId, 'deployed')
    await first.close()
    const second = await PostgresMetadataStore.open({
      driver: 'postgres',
      url: postgres.url,
      schema,
    })
    try {
      assert.deepEqual(await second.findOrganization({ id: org.id }), org)
      const back = await second.findModel(ns.id, model.modelId)
      assert.deepEqual(back, { ...model, deployment: { ...model.deployment, desired: 'deployed' } })
    } finally {
      await second.close()
    }
  })

  it('postgres: a refused connection says so without echoing the password', async () => {
    const url = new URL(postgres.url)
    // A port nothing listens on: the start fails, as with a database that is down.
    url.port = '1'
    url.username = 'berth'
    url.password = 'sekrit-pg-password'
    await assert.rejects(
      PostgresMetadataStore.open({ driver: 'postgres', url: url.toString() }),
      (err: Error) => {
        assert.doesNotMatch(`${err.message} ${err.stack ?? ''}`, /sekrit-pg-password/)
        return true
      },
    )
  })
}
