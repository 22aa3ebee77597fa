import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

describe('error model', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp({ BERTH_BODY_LIMIT_BYTES: '2048' })
  })
  after(() => t.close())

  it('answers unknown routes with a 404 route_not_found envelope', async () => {
    for (const [method, url] of [
      ['GET', '/nope'],
      ['POST', '/v1/nothing-here'],
      ['PUT', '/v1/namespaces'],
    ] as const) {
      const res = await t.request({ method, url, key: BOOTSTRAP_KEY })
      assert.equal(res.statusCode, 404, url)
      assert.deepEqual(res.json().success, false)
      assert.equal(res.json().status, 404)
      assert.equal(res.json().error.type, 'NotFoundError')
      assert.equal(res.json().error.code, 'route_not_found')
    }
  })

  it('puts x-request-id on every response, keeping a well-formed incoming one', async () => {
    const responses = [
      await t.request({ method: 'GET', url: '/healthz' }),
      await t.request({ method: 'GET', url: '/v1/namespaces' }),
      await t.request({ method: 'GET', url: '/missing' }),
      await t.request({ method: 'POST', url: '/v1/namespaces', key: BOOTSTRAP_KEY, body: {} }),
    ]
    const ids = responses.map((r) => r.headers['x-request-id'])
    for (const id of ids) assert.match(String(id), /^req_[0-9a-f-]{36}$/)
    assert.equal(new Set(ids).size, ids.length)

    const kept = await t.request({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'client-trace.42' },
    })
    assert.equal(kept.headers['x-request-id'], 'client-trace.42')
    const replaced = await t.request({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'bad id with spaces\u0007' },
    })
    assert.match(String(replaced.headers['x-request-id']), /^req_/)
  })

  it('answers unparsable JSON with 400 request_malformed', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: BOOTSTRAP_KEY,
      body: '{"namespace_name": ',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().error.type, 'BadRequestError')
    assert.equal(res.json().error.code, 'request_malformed')
  })

  it('answers a body over the limit with 413 request_body_too_large', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: BOOTSTRAP_KEY,
      body: { namespace_name: 'big', description: 'x'.repeat(4096) },
    })
    assert.equal(res.statusCode, 413)
    assert.equal(res.json().error.type, 'PayloadTooLargeError')
    assert.equal(res.json().error.code, 'request_body_too_large')
  })

  it('answers a server fault with a bare 500 and logs it with the request id', async () => {
    // Break the database under the running server: the query now fails with an SQLite error
    // that names the table, which must not reach the client.
    const sqlite = new Database(join(t.dataDir, 'berth.db'))
    sqlite.exec('DROP TABLE namespaces')
    sqlite.close()

    const res = await t.request({
      method: 'GET',
      url: '/v1/namespaces',
      key: BOOTSTRAP_KEY,
      headers: { 'x-request-id': 'fault-1' },
    })
    assert.equal(res.statusCode, 500)
    assert.deepEqual(res.json(), {
      success: false,
      status: 500,
      error: {
        type: 'InternalServerError',
        message: 'internal server error',
        code: 'internal_error',
      },
    })
    for (const leak of ['namespaces', 'SQLITE', 'sqlite', t.dataDir, '.ts:', '.js:', ' at ']) {
      assert.ok(!res.body.includes(leak), `500 body leaks ${leak}`)
    }
    const logged = t
      .logs()
      .split('\n')
      .filter((line) => line.includes('"fault-1"') && line.includes('"level":"error"'))
    assert.equal(logged.length, 1)
    assert.match(logged[0] ?? '', /no such table: namespaces/)
    assert.match(logged[0] ?? '', /"stack"/)
  })
})
