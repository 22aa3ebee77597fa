import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

describe('namespaces', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(() => t.close())

  const create = (body: unknown, key = BOOTSTRAP_KEY) =>
    t.request({ method: 'POST', url: '/v1/namespaces', key, body })

  it('creates a namespace and gets it by id and by name', async () => {
    const created = await create({ namespace_name: 'production', description: 'live traffic' })
    assert.equal(created.statusCode, 200)
    const ns = created.json()
    assert.match(ns.namespace_id, /^ns_[0-9a-f]{20}$/)
    assert.equal(ns.namespace_name, 'production')
    assert.equal(ns.description, 'live traffic')
    assert.ok(!Number.isNaN(Date.parse(ns.created_at)))
    assert.equal(ns.updated_at, ns.created_at)

    for (const ref of [ns.namespace_id, 'production']) {
      const got = await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ref}`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(got.statusCode, 200)
      assert.deepEqual(got.json(), ns)
    }
  })

  it('lists the namespaces of the organization', async () => {
    await create({ namespace_name: 'listed-one' })
    await create({ namespace_name: 'listed-two' })
    const res = await t.request({ method: 'GET', url: '/v1/namespaces', key: BOOTSTRAP_KEY })
    assert.equal(res.statusCode, 200)
    const body = res.json()
    assert.equal(body.success, true)
    const names = body.namespaces.map((n: { namespace_name: string }) => n.namespace_name)
    assert.ok(names.includes('listed-one') && names.includes('listed-two'))
    assert.equal(body.total, body.namespaces.length)
  })

  it('answers 409 namespace_name_taken for a duplicate name', async () => {
    assert.equal((await create({ namespace_name: 'twice' })).statusCode, 200)
    const res = await create({ namespace_name: 'twice' })
    assert.equal(res.statusCode, 409)
    assert.equal(res.json().error.type, 'AlreadyExistsError')
    assert.equal(res.json().error.code, 'namespace_name_taken')
  })

  it('answers 422 with detail[] and the envelope for {}', async () => {
    const res = await create({})
    assert.equal(res.statusCode, 422)
    const body = res.json()
    assert.equal(body.success, false)
    assert.equal(body.status, 422)
    assert.equal(body.error.type, 'ValidationError')
    assert.equal(body.error.code, 'request_validation_failed')
    assert.deepEqual(body.detail, [
      { loc: ['body', 'namespace_name'], msg: 'Field required', type: 'missing' },
    ])
  })

  it('lists every invalid field, not just the first', async () => {
    const res = await create({ namespace_name: '1bad name', description: 'x'.repeat(1001) })
    assert.equal(res.statusCode, 422)
    const locs = res.json().detail.map((d: { loc: string[] }) => d.loc.join('.'))
    assert.deepEqual(locs.sort(), ['body.description', 'body.namespace_name'])
  })

  it('refuses names that could be taken for ids, and too short or long names', async () => {
    for (const namespace_name of ['ns_abc', 'ab', 'a'.repeat(65), '-dash', 'has space']) {
      const res = await create({ namespace_name })
      assert.equal(res.statusCode, 422, namespace_name)
    }
  })

  it('deletes a namespace, after which it is 404', async () => {
    const ns = (await create({ namespace_name: 'doomed' })).json()
    const del = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns.namespace_id}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(del.statusCode, 200)
    assert.deepEqual(del.json(), {
      success: true,
      namespace_id: ns.namespace_id,
      message: 'namespace "doomed" deleted',
    })
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await t.request({ method, url: '/v1/namespaces/doomed', key: BOOTSTRAP_KEY })
      assert.equal(res.statusCode, 404)
      assert.equal(res.json().error.code, 'namespace_not_found')
      assert.equal(res.json().error.type, 'NotFoundError')
    }
  })
})
