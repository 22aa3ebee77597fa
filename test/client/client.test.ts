import assert from 'node:assert/strict'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import {
  BerthApiError,
  BerthClient,
  BerthConnectionError,
  BerthInputError,
  type UploadProgress,
} from '@berth/client'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { assertClose } from '../helpers/inference.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

/** @berth/client against a real server on 127.0.0.1: every call crosses HTTP. */
describe('@berth/client', () => {
  let t: TestApp
  let client: BerthClient
  let dir: Awaited<ReturnType<typeof tempDir>>
  const X = [0.5, -1, 2, 0.25]
  const WANT = referenceMlp(X, 1, 4, 8, 3, 7)

  before(async () => {
    t = await startTestApp()
    await t.app.server.listen({ host: '127.0.0.1', port: 0 })
    const { port } = t.app.server.server.address() as AddressInfo
    client = new BerthClient({ url: `http://127.0.0.1:${port}/`, apiKey: BOOTSTRAP_KEY })
    dir = await tempDir()
  })
  after(async () => {
    await t.close()
    await dir.remove()
  })

  it('creates, lists and reads namespaces, typed from the OpenAPI document', async () => {
    const created = await client.createNamespace({ namespace_name: 'client-ns' })
    assert.equal(created.namespace_name, 'client-ns')
    const listed = await client.listNamespaces()
    assert.ok(listed.namespaces.some((n) => n.namespace_name === 'client-ns'))
    assert.equal((await client.getNamespace('client-ns')).namespace_id, created.namespace_id)
    // Any route, through the typed `api`.
    const node = await client.api.GET('/v1/node')
    assert.equal(node.response.status, 200)
    assert.ok((node.data?.node.memory_bytes ?? 0) > 0)
  })

  it('uploads a bare model file (packed on the way) with progress, waits, infers in JSON', async () => {
    const file = join(dir.path, 'model.onnx')
    await writeFile(file, mlpModel(4, 8, 3, 7))
    const progress: UploadProgress[] = []
    const up = await client.upload(
      'client-ns',
      file,
      { name: 'bare', version: '1.0.0', model_format: 'onnx', memory_gb: 0.5 },
      { onProgress: (p) => progress.push(p), progressEveryMs: 0 },
    )
    assert.equal(up.model_id, 'bare_1_0_0')
    const last = progress.at(-1)
    assert.ok(last !== undefined && last.readBytes === last.sourceBytes && last.sentBytes > 0)
    const changes: string[] = []
    const deployment = await client.waitForDeployment('client-ns', 'bare_1_0_0', {
      onChange: (d) => changes.push(d.state),
    })
    assert.equal(deployment.state, 'deployed', JSON.stringify(deployment))
    assert.equal(changes.at(-1), 'deployed')
    const answer = await client.infer('client-ns', 'bare_1_0_0', {
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: X }],
    })
    assertClose(answer.outputs[0]?.data as number[], WANT)
    // Its last hour, a point per minute: the request above is in it.
    const history = await client.modelHistory('client-ns', 'bare_1_0_0')
    assert.equal(history.step_seconds, 60)
    assert.equal(
      history.points.reduce((n, p) => n + p.requests, 0),
      1,
    )
  })

  it('uploads a folder and a stream; runs typed-array tensors in binary', async () => {
    const folder = join(dir.path, 'folder')
    await mkdir(join(folder, 'nested'), { recursive: true })
    await writeFile(join(folder, 'nested', 'model.onnx'), mlpModel(4, 8, 3, 7))
    const fromFolder = await client.upload('client-ns', folder, {
      name: 'folder',
      version: '1.0.0',
      model_format: 'onnx',
      deploy: false,
    })
    assert.equal(fromFolder.model_id, 'folder_1_0_0')
    const stream = Readable.from([await tarGzOf({ 'model.onnx': mlpModel(4, 8, 3, 7) })])
    await client.upload('client-ns', stream, {
      name: 'streamed',
      version: '2.0.0',
      model_format: 'onnx',
    })
    assert.equal((await client.waitForDeployment('client-ns', 'streamed_2_0_0')).state, 'deployed')
    const outputs = await client.inferTensors('client-ns', 'streamed', {
      x: { data: Float32Array.from(X), shape: [1, 4] },
    })
    const y = outputs.y
    assert.ok(y !== undefined && y.data instanceof Float32Array)
    assert.equal(y.datatype, 'FP32')
    assert.deepEqual(y.shape, [1, 3])
    assertClose(Array.from(y.data), WANT)
  })

  it('deploys and undeploys, and lists the models', async () => {
    const deployed = await client.deploy('client-ns', 'folder_1_0_0', undefined, { wait: true })
    assert.equal(deployed.deployment_status, 'deployed')
    const undeployed = await client.undeploy('client-ns', 'folder_1_0_0')
    assert.equal(undeployed.deployment_status, 'not_deployed')
    const models = await client.listModels('client-ns')
    assert.deepEqual(models.models.map((m) => m.model_id).sort(), [
      'bare_1_0_0',
      'folder_1_0_0',
      'streamed_2_0_0',
    ])
    await client.deleteModel('client-ns', 'folder_1_0_0')
  })

  it("throws the envelope's code, and says when the server cannot be reached", async () => {
    await assert.rejects(client.getModel('client-ns', 'nope_1_0_0'), (err) => {
      assert.ok(err instanceof BerthApiError)
      assert.equal(err.status, 404)
      assert.equal(err.code, 'model_not_found')
      return true
    })
    const stranger = new BerthClient({ url: client.url, apiKey: 'sk_not_a_key_of_anyone_here' })
    await assert.rejects(stranger.listNamespaces(), (err) => {
      assert.ok(err instanceof BerthApiError)
      assert.equal(err.status, 401)
      return true
    })
    // A refused upload: the answer, not a broken pipe.
    await assert.rejects(
      stranger.upload('client-ns', join(dir.path, 'model.onnx'), {
        name: 'x',
        version: '1.0.0',
        model_format: 'onnx',
      }),
      (err) => err instanceof BerthApiError && err.status === 401,
    )
    const nobody = new BerthClient({ url: 'http://127.0.0.1:9', apiKey: BOOTSTRAP_KEY })
    await assert.rejects(nobody.listNamespaces(), (err) => {
      assert.ok(err instanceof BerthConnectionError)
      assert.equal(err.code, 'server_unreachable')
      return true
    })
    await assert.rejects(
      nobody.upload('client-ns', join(dir.path, 'model.onnx'), {
        name: 'x',
        version: '1.0.0',
        model_format: 'onnx',
      }),
      (err) => err instanceof BerthConnectionError,
    )
  })

  it('refuses a path it cannot upload before sending anything', async () => {
    const link = join(dir.path, 'link.onnx')
    await symlink(join(dir.path, 'model.onnx'), link)
    const fields = { name: 'x', version: '1.0.0', model_format: 'onnx' } as const
    for (const [path, code] of [
      [join(dir.path, 'missing.onnx'), 'path_not_found'],
      [link, 'path_is_link'],
    ] as const) {
      await assert.rejects(
        client.upload('client-ns', path, fields),
        (err) => err instanceof BerthInputError && err.code === code,
      )
    }
  })
})
