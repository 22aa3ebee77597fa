import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runAdminCommand } from '../helpers/admin.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

describe('tenant isolation', () => {
  let t: TestApp
  let otherKey: string
  let owned: { namespace_id: string; namespace_name: string }

  before(async () => {
    t = await startTestApp()
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    otherKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: BOOTSTRAP_KEY,
      body: { namespace_name: 'secret-space' },
    })
    owned = res.json()
  })
  after(() => t.close())

  it("answers 404 for another organization's namespace, by id and by name", async () => {
    for (const ref of [owned.namespace_id, owned.namespace_name]) {
      const res = await t.request({ method: 'GET', url: `/v1/namespaces/${ref}`, key: otherKey })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().error.code, 'namespace_not_found')
      // Exactly as if it did not exist.
      const ghost = await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ref.replace(/.$/, ref.endsWith('0') ? '1' : '0')}`,
        key: otherKey,
      })
      assert.deepEqual(Object.keys(res.json().error), Object.keys(ghost.json().error))
      assert.equal(res.json().error.type, ghost.json().error.type)
    }
  })

  it("never lists another organization's namespaces", async () => {
    const res = await t.request({ method: 'GET', url: '/v1/namespaces', key: otherKey })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json().namespaces, [])
    assert.equal(res.json().total, 0)
  })

  it("cannot delete another organization's namespace", async () => {
    for (const ref of [owned.namespace_id, owned.namespace_name]) {
      const res = await t.request({ method: 'DELETE', url: `/v1/namespaces/${ref}`, key: otherKey })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().error.code, 'namespace_not_found')
    }
    const still = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${owned.namespace_id}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(still.statusCode, 200)
  })

  it('keeps names per organization: the rival may use the same name', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: otherKey,
      body: { namespace_name: owned.namespace_name },
    })
    assert.equal(res.statusCode, 200)
    assert.notEqual(res.json().namespace_id, owned.namespace_id)
    const mine = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${owned.namespace_name}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(mine.json().namespace_id, owned.namespace_id)
  })
})
