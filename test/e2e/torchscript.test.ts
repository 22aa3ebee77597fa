import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeTorchFixtures, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

async function uploadScripted(t: TestApp, ns: string, module: Buffer) {
  return uploadAndWait(
    t,
    ns,
    { name: 'scripted', model_format: 'pytorch', memory_gb: '2' },
    { 'model.pt': module },
  )
}

/** TorchScript runs in berth's python torch runner, behind the same protocol. */
describe('TorchScript models', async () => {
  const skip = await torchSkipReason()
  let fixtures: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    fixtures = await tempDir()
    if (skip === undefined) await makeTorchFixtures(fixtures.path)
  })
  after(() => fixtures.remove())

  it('deploys and answers exactly as torch does, with input names from forward()', {
    skip,
  }, async () => {
    const t = await startTestApp()
    try {
      const ns = await createNamespace(t, 'torch')
      const answer = await uploadScripted(
        t,
        ns,
        await readFile(join(fixtures.path, 'mlp_scripted.pt')),
      )
      assert.equal(answer.deployment_status, 'deployed', JSON.stringify(answer))
      const expected = JSON.parse(
        await readFile(join(fixtures.path, 'mlp_scripted.expected.json'), 'utf8'),
      ) as { input: number[]; output: number[]; output_hex: string }

      const meta = await t.request({
        method: 'GET',
        url: '/v2/models/scripted',
        key: BOOTSTRAP_KEY,
        headers: { 'x-namespace': 'torch' },
      })
      assert.deepEqual(meta.json().inputs, [{ name: 'x', datatype: 'ANY', shape: [-1] }])
      assert.equal(meta.json().platform, 'pytorch_libtorch')

      const res = await t.request({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models/scripted_1_0_0/infer`,
        key: BOOTSTRAP_KEY,
        body: {
          inputs: [{ name: 'x', shape: [2, 16], datatype: 'FP32', data: expected.input }],
          parameters: { binary_data_output: true },
        },
      })
      assert.equal(res.statusCode, 200, res.body)
      const headerLength = Number(res.headers['inference-header-content-length'])
      const header = JSON.parse(res.rawPayload.subarray(0, headerLength).toString())
      assert.deepEqual(header.outputs, [
        {
          name: 'output__0',
          datatype: 'FP32',
          shape: [2, 4],
          parameters: { binary_data_size: 32 },
        },
      ])
      // Bit for bit what torch computed.
      assert.equal(res.rawPayload.subarray(headerLength).toString('hex'), expected.output_hex)

      const bad = await t.request({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models/scripted_1_0_0/infer`,
        key: BOOTSTRAP_KEY,
        body: {
          inputs: [{ name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }],
        },
      })
      assert.equal(bad.statusCode, 400)
      assert.equal(bad.json().error.code, 'inference_failed')
    } finally {
      await t.close()
    }
  })

  it('fails the deployment with runtime_unavailable where no python has torch', {
    skip,
  }, async () => {
    // In a container the runtime is the image: one the engine lacks is the runtime missing.
    const containers = process.env.BERTH_TEST_SCHEDULER ?? 'local'
    const t = await startTestApp(
      containers === 'local'
        ? { BERTH_TORCH_PYTHON: '/nonexistent/python3' }
        : { BERTH_RUNTIME_IMAGE_TORCH: 'berth-test-no-such-image:none' },
    )
    try {
      const ns = await createNamespace(t, 'no-torch')
      const answer = await uploadScripted(
        t,
        ns,
        await readFile(join(fixtures.path, 'mlp_scripted.pt')),
      )
      assert.equal(answer.deployment_status, 'failed')
      const model = await getModel(t, ns, 'scripted_1_0_0')
      assert.equal(model.deployment.reason, 'runtime_unavailable')
      assert.match(
        model.deployment.message,
        containers === 'local'
          ? /apt-get install python3-torch/
          : /docker build -f docker\/runtime-torch/,
      )
    } finally {
      await t.close()
    }
  })
})
