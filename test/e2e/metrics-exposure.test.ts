import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { runAdminCommand } from '../helpers/admin.js'
import { startBerthServe } from '../helpers/berth-process.js'
import { multipartBody } from '../helpers/multipart.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadAndWait } from '../helpers/uploads.js'

/**
 * `/metrics` names every organization's namespaces, models and states (issue 13, report 8): it is
 * open only on a loopback API address (the default, tested in metrics.test.ts), and otherwise
 * needs the metrics token or a listener of its own. An organization reads its own series through
 * the API.
 */

const TOKEN = 'metrics-token-for-the-tests'

describe('/metrics beyond this machine', () => {
  it('is refused on a non-loopback API address without a token or a listener, saying what to set', async () => {
    const t = await startTestApp({ BERTH_HOST: '0.0.0.0' })
    try {
      const ns = await createNamespace(t, 'exposed')
      const res = await t.request({ method: 'GET', url: '/metrics' })
      assert.equal(res.statusCode, 403, res.body)
      assert.equal(res.json().success, false)
      assert.equal(res.json().error.code, 'metrics_not_exposed')
      assert.ok(!res.body.includes('berth_'), res.body)
      assert.ok(!res.body.includes(ns))
      // Nor with an API key: it is not a tenant's view.
      const keyed = await t.request({ method: 'GET', url: '/metrics', key: BOOTSTRAP_KEY })
      assert.equal(keyed.statusCode, 403)
      assert.match(t.logs(), /"level":"warn",[^\n]*BERTH_METRICS_TOKEN/)
    } finally {
      await t.close()
    }
  })

  it('needs the metrics token when one is set, wherever the API listens', async () => {
    const t = await startTestApp({ BERTH_HOST: '0.0.0.0', BERTH_METRICS_TOKEN: TOKEN })
    try {
      const refused: Array<[string, Record<string, string>]> = [
        ['none', {}],
        ['wrong', { authorization: `Bearer ${TOKEN}x` }],
        ['an API key', { authorization: `Bearer ${BOOTSTRAP_KEY}` }],
        ['not bearer', { authorization: `Basic ${TOKEN}` }],
      ]
      for (const [what, headers] of refused) {
        const res = await t.request({ method: 'GET', url: '/metrics', headers })
        assert.equal(res.statusCode, 401, what)
        assert.equal(res.json().error.code, 'metrics_token_invalid', what)
        assert.ok(!res.body.includes('berth_'), what)
      }
      const res = await t.request({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      assert.equal(res.statusCode, 200, res.body)
      assert.match(res.body, /^berth_upload_bytes_total 0$/m)
      assert.ok(!t.logs().includes(TOKEN), 'the token was logged')
    } finally {
      await t.close()
    }
  })

  it('is served only by its own listener when BERTH_METRICS_PORT is set', async () => {
    const t = await startTestApp({ BERTH_METRICS_PORT: '0', BERTH_METRICS_TOKEN: TOKEN })
    try {
      const onApi = await t.request({ method: 'GET', url: '/metrics' })
      assert.equal(onApi.statusCode, 404)
      assert.equal(onApi.json().error.code, 'route_not_found')
      const own = t.app.metricsServer
      assert.ok(own, 'a metrics listener was built')
      const bare = await own.inject({ method: 'GET', url: '/metrics' })
      assert.equal(bare.statusCode, 401)
      assert.equal(bare.json().error.code, 'metrics_token_invalid')
      const res = await own.inject({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${TOKEN}` },
      })
      assert.equal(res.statusCode, 200)
      assert.match(res.body, /^berth_upload_bytes_total 0$/m)
      // It serves nothing else.
      const health = await own.inject({ method: 'GET', url: '/healthz' })
      assert.equal(health.statusCode, 404)
      assert.equal(health.json().error.code, 'route_not_found')
    } finally {
      await t.close()
    }
  })

  it('`berth serve` listens for /metrics on BERTH_METRICS_HOST:BERTH_METRICS_PORT', async () => {
    const dir = await tempDir()
    const server = await startBerthServe({ BERTH_DATA_DIR: dir.path, BERTH_METRICS_PORT: '0' })
    try {
      let metricsUrl: string | undefined
      for (let i = 0; i < 100 && metricsUrl === undefined; i++) {
        metricsUrl = server
          .output()
          .split('\n')
          .filter((line) => line.includes('"listener":"metrics"'))
          .map((line) => /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1])
          .find((url) => url !== undefined)
        if (metricsUrl === undefined) await new Promise((resolve) => setTimeout(resolve, 50))
      }
      assert.ok(metricsUrl, server.output())
      assert.notEqual(metricsUrl, server.url)
      assert.equal((await fetch(`${server.url}/metrics`)).status, 404)
      const res = await fetch(`${metricsUrl}/metrics`)
      assert.equal(res.status, 200)
      assert.match(await res.text(), /^berth_upload_bytes_total 0$/m)
      assert.equal(await server.stop(), 0)
    } finally {
      await server.stop()
      await dir.remove()
    }
  })
})

describe("an organization's own metrics through the API", () => {
  let t: TestApp
  let rivalKey: string
  let ownNs: string
  let rivalNs: string

  before(async () => {
    t = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
    ownNs = await createNamespace(t, 'own-space')
    const created = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key: rivalKey,
      body: { namespace_name: 'rival-space' },
    })
    rivalNs = created.json().namespace_id
    const files = { 'model.onnx': mlpModel(4, 8, 2, 1) }
    await uploadAndWait(t, ownNs, { name: 'mine', model_format: 'onnx', memory_gb: '0.5' }, files)
    const { answer } = await uploadAs(t, rivalKey, rivalNs, files)
    assert.equal(answer.deployment_status, 'deployed')
  })
  after(() => t.close())

  it("shows the key's organization's per-model series only, by namespace name", async () => {
    const whole = (await t.request({ method: 'GET', url: '/metrics' })).body
    // The operator's view: every organization's series, by namespace name and id.
    assert.match(whole, new RegExp(`namespace="own-space",namespace_id="${ownNs}",model="mine"`))
    assert.match(
      whole,
      new RegExp(`namespace="rival-space",namespace_id="${rivalNs}",model="theirs"`),
    )

    const own = await t.request({ method: 'GET', url: '/v1/metrics', key: BOOTSTRAP_KEY })
    assert.equal(own.statusCode, 200, own.body)
    assert.match(String(own.headers['content-type']), /^text\/plain/)
    assert.match(
      own.body,
      /^berth_deployment_state\{namespace="own-space",model="mine",version="1.0.0",state="deployed"\} 1$/m,
    )
    assert.match(own.body, /^berth_model_load_duration_seconds_count\{namespace="own-space",/m)
    for (const hidden of [
      ownNs,
      rivalNs,
      'rival-space',
      'theirs',
      'berth_http_',
      'berth_process_',
    ]) {
      assert.ok(!own.body.includes(hidden), `shows ${hidden}`)
    }

    const rival = await t.request({ method: 'GET', url: '/v1/metrics', key: rivalKey })
    assert.equal(rival.statusCode, 200)
    assert.match(rival.body, /namespace="rival-space",model="theirs"/)
    for (const hidden of [ownNs, rivalNs, 'own-space', 'mine']) {
      assert.ok(!rival.body.includes(hidden), `shows ${hidden}`)
    }
    const anonymous = await t.request({ method: 'GET', url: '/v1/metrics' })
    assert.equal(anonymous.statusCode, 401)
    assert.equal(anonymous.json().error.code, 'api_key_missing')
  })
})

/** Uploads `files` as "theirs" 1.0.0 with `key` and waits for its deployment. */
async function uploadAs(
  t: TestApp,
  key: string,
  namespace: string,
  files: Record<string, Buffer>,
): Promise<{ answer: { deployment_status: string } }> {
  const { payload, headers } = multipartBody([
    ...formFields({ name: 'theirs', version: '1.0.0', model_format: 'onnx', memory_gb: '0.5' }),
    archivePart(await tarGzOf(files)),
  ])
  const res = await t.request({
    method: 'POST',
    url: `/v1/namespaces/${namespace}/models?wait=true`,
    key,
    body: payload,
    headers,
  })
  assert.equal(res.statusCode, 200, res.body)
  return { answer: res.json() }
}
