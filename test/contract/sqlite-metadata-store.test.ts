import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, it } from 'node:test'
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js'
import { apiKey, organization } from '../fixtures/account-records.js'
import { tempDir } from '../helpers/temp-dir.js'
import { closedStoreContract, metadataStoreContract } from './metadata-store.contract.js'

const dir = await tempDir()
after(() => dir.remove())
let n = 0
const onDisk = () =>
  SqliteMetadataStore.open({ driver: 'sqlite', path: join(dir.path, `${n++}`, 'berth.db') })

metadataStoreContract('sqlite (file)', onDisk)
metadataStoreContract('sqlite (:memory:)', () =>
  SqliteMetadataStore.open({ driver: 'sqlite', path: ':memory:' }),
)
closedStoreContract('sqlite (file)', onDisk)

it("sees a key revoked, or an organization's tier changed, by another connection at once", async () => {
  // The server's store and the admin CLI's, two connections to one file (two processes, in use).
  const path = join(dir.path, 'shared', 'berth.db')
  const server = await SqliteMetadataStore.open({ driver: 'sqlite', path })
  const cli = await SqliteMetadataStore.open({ driver: 'sqlite', path })
  try {
    const { id: organizationId } = organization()
    await cli.createOrganization(organization({ id: organizationId }))
    const key = apiKey(organizationId)
    await cli.createApiKey(key)
    // Found, and found again (kept while nothing changed).
    for (let i = 0; i < 2; i++) {
      assert.equal((await server.findCredential(key.hash))?.organization.tier, 'free')
    }
    await cli.setOrganizationTier(organizationId, 'enterprise', '2026-01-02T00:00:00.000Z')
    assert.equal((await server.findCredential(key.hash))?.organization.tier, 'enterprise')
    await cli.revokeApiKey(key.id, '2026-01-03T00:00:00.000Z')
    assert.equal((await server.findCredential(key.hash))?.key.revokedAt, '2026-01-03T00:00:00.000Z')
    // And the server's own writes: the CLI's connection sees them as the server does.
    await server.setOrganizationTier(organizationId, 'team', '2026-01-04T00:00:00.000Z')
    assert.equal((await server.findCredential(key.hash))?.organization.tier, 'team')
    assert.equal((await cli.findCredential(key.hash))?.organization.tier, 'team')
  } finally {
    await server.close()
    await cli.close()
  }
})
