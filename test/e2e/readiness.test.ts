import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadModel } from '../helpers/uploads.js'

/** Readiness says what serves: the server once eager models settled, a model while it has a runner. */
describe('readiness', () => {
  let t: TestApp
  let ns: string
  const get = (url: string) =>
    t.request({ method: 'GET', url, key: BOOTSTRAP_KEY, headers: { 'x-namespace': ns } })
  const node = async () =>
    (await t.request({ method: 'GET', url: '/v1/node', key: BOOTSTRAP_KEY })).json()

  before(async () => {
    t = await startTestApp({ BERTH_RUNNER_RESTART_BACKOFF_MS: '300' })
    ns = await createNamespace(t, 'readiness')
  })
  after(() => t.close())

  it('is not ready while an eager model loads, and ready once it serves', async () => {
    assert.equal((await get('/v2/health/ready')).statusCode, 200)
    const upload = await uploadModel(t, ns, [
      ...formFields({ name: 'eager-one', version: '1.0.0', model_format: 'onnx' }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(upload.statusCode, 200, upload.body)
    assert.equal(upload.json().deployment_status, 'pending')
    const loading = await get('/v2/health/ready')
    assert.equal(loading.statusCode, 503)
    assert.deepEqual(loading.json(), { ready: false })
    await eventually(async () => (await get('/v2/health/ready')).statusCode === 200, 20_000)
    assert.equal((await get('/v2/models/eager-one/ready')).statusCode, 200)
  })

  it('says a model is not ready while its only runner restarts, and ready again after', async () => {
    const [deployment] = (await node()).deployments.filter(
      (d: { model_id: string }) => d.model_id === 'eager-one_1_0_0',
    )
    process.kill(deployment.processes[0], 'SIGKILL')
    const ready = () => get('/v2/models/eager-one_1_0_0/ready')
    let refused: Awaited<ReturnType<typeof ready>> | undefined
    await eventually(async () => {
      const answer = await ready()
      if (answer.statusCode === 503) refused = answer
      return refused !== undefined
    }, 5000)
    assert.equal(refused?.json().error.code, 'model_not_ready')
    await eventually(async () => (await ready()).statusCode === 200, 20_000)
  })
})
