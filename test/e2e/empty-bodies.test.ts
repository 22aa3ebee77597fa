import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace } from '../helpers/uploads.js'

interface Operation {
  readonly requestBody?: {
    readonly required?: boolean
    readonly content?: Record<string, unknown>
  }
}

/**
 * Generated clients send `Content-Type: application/json` with an empty body for calls whose
 * body is optional; FastAPI reads that as no body. Every such route in the OpenAPI document
 * takes it (it used to be 400 request_malformed, FST_ERR_CTP_EMPTY_JSON_BODY).
 */
describe('empty JSON bodies', () => {
  let t: TestApp
  let ns: string

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'empty-bodies')
  })
  after(() => t.close())

  it('are no body on every route whose JSON body is optional', async () => {
    const doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json() as {
      paths: Record<string, Record<string, Operation>>
    }
    const optional: string[] = []
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const body = op.requestBody
        if (body === undefined || body.required === true) continue
        if (body.content?.['application/json'] === undefined) continue
        optional.push(`${method.toUpperCase()} ${path}`)
        const url = path.replace('{namespace_id}', ns).replaceAll(/\{[^}]+\}/g, 'nothing_1_0_0')
        for (const payload of ['', '  ']) {
          const res = await t.request({
            method: method.toUpperCase() as 'POST',
            url,
            key: BOOTSTRAP_KEY,
            body: payload,
            headers: { 'content-type': 'application/json', 'x-namespace': ns },
          })
          const code = res.statusCode === 400 ? res.json().error?.code : undefined
          assert.notEqual(code, 'request_malformed', `${method} ${url}: ${res.body}`)
          assert.ok(res.statusCode < 500, `${method} ${url}: ${res.statusCode} ${res.body}`)
        }
      }
    }
    // The calls the issue names are among them.
    assert.ok(
      optional.some((o) => o.endsWith('/deploy')),
      optional.join(', '),
    )
  })

  it('still refuses an empty body where one is required, naming it (422)', async () => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: BOOTSTRAP_KEY,
      body: '',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(res.statusCode, 422, res.body)
    assert.equal(res.json().error.code, 'request_validation_failed')
  })

  it('deploys with an empty JSON body, as a generated client sends it', async () => {
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/absent_1_0_0/deploy`,
      key: BOOTSTRAP_KEY,
      body: '',
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(res.statusCode, 404, res.body)
    assert.equal(res.json().error.code, 'model_not_found')
  })
})
