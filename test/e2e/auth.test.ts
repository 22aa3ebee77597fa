import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { TIERS } from '../../src/domain/organization.js'
import { runAdminCommand } from '../helpers/admin.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

describe('authentication and tiers', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(() => t.close())

  const listWith = (headers: Record<string, string>) =>
    t.request({ method: 'GET', url: '/v1/namespaces', headers })

  it('answers 401 api_key_missing without a bearer key', async () => {
    for (const headers of [
      {},
      { authorization: 'Basic dXNlcjpwYXNz' },
      { authorization: 'Bearer' },
    ]) {
      const res = await listWith(headers)
      assert.equal(res.statusCode, 401)
      assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'status', 'success'])
      assert.equal(res.json().success, false)
      assert.equal(res.json().status, 401)
      assert.equal(res.json().error.type, 'UnauthorizedError')
      assert.equal(res.json().error.code, 'api_key_missing')
    }
  })

  it('answers 401 api_key_invalid for an unknown key', async () => {
    const res = await listWith({ authorization: 'Bearer sk_not_a_real_key_at_all_000000000000' })
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().error.code, 'api_key_invalid')
  })

  it('answers 401 before validating the body', async () => {
    const res = await t.request({ method: 'POST', url: '/v1/namespaces', body: {} })
    assert.equal(res.statusCode, 401)
  })

  it('accepts a key until it is revoked', async () => {
    const key = await runAdminCommand(['key', 'create', '--org', 'default'], t.config)
    const auth = { authorization: `Bearer ${key.api_key}` }
    assert.equal((await listWith(auth)).statusCode, 200)
    await runAdminCommand(['key', 'revoke', String(key.key_id)], t.config)
    const res = await listWith(auth)
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().error.code, 'api_key_invalid')
    // Other keys of the organization keep working.
    assert.equal((await listWith({ authorization: `Bearer ${BOOTSTRAP_KEY}` })).statusCode, 200)
  })

  it('lets every tier use namespaces', async () => {
    for (const tier of TIERS) {
      await runAdminCommand(['org', 'create', `tier-${tier}`, '--tier', tier], t.config)
      const { api_key } = await runAdminCommand(
        ['key', 'create', '--org', `tier-${tier}`],
        t.config,
      )
      const key = String(api_key)
      const created = await t.request({
        method: 'POST',
        url: '/v1/namespaces',
        key,
        body: { namespace_name: `space-${tier}` },
      })
      assert.equal(created.statusCode, 200, tier)
      const listed = await t.request({ method: 'GET', url: '/v1/namespaces', key })
      assert.equal(listed.json().total, 1, tier)
    }
  })

  it('needs no key for health, metrics and the API description', async () => {
    for (const url of ['/healthz', '/metrics', '/openapi.json']) {
      assert.equal((await t.request({ method: 'GET', url })).statusCode, 200, url)
    }
  })
})
