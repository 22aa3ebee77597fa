import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { deployTinyMlp } from '../helpers/uploads.js'

describe('metrics', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
  })
  after(() => t.close())

  it('serves Prometheus text with every metric prefixed berth_', async () => {
    await t.request({ method: 'GET', url: '/v1/namespaces', key: BOOTSTRAP_KEY })
    await t.request({ method: 'GET', url: '/v1/namespaces' })
    const res = await t.request({ method: 'GET', url: '/metrics' })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['content-type']), /^text\/plain/)
    const names = [...res.body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? '')
    assert.ok(names.length > 5)
    for (const name of names) assert.ok(name.startsWith('berth_'), name)
    assert.match(
      res.body,
      /^berth_http_request_duration_seconds_count\{method="GET",route="\/v1\/namespaces",status_code="200"\} 1$/m,
    )
    assert.match(
      res.body,
      /^berth_http_request_duration_seconds_count\{method="GET",route="\/v1\/namespaces",status_code="401"\} 1$/m,
    )
    assert.match(res.body, /^berth_upload_bytes_total 0$/m)
  })

  it('reports no capacity leak after a deploy and an undeploy', async () => {
    const { namespaceId } = await deployTinyMlp(t, 'leaks')
    await t.request({
      method: 'POST',
      url: `/v1/namespaces/${namespaceId}/models/mlp_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    const res = await t.request({ method: 'GET', url: '/metrics' })
    assert.match(res.body, /^berth_capacity_leaks 0$/m)
  })
})
