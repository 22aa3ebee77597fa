import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { constantOfShapeModel, matmulModel, mlpModel } from '../fixtures/onnx-models.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

/**
 * Issue 13, report 3: one request's memory is that request's problem. A request whose tensors
 * cannot fit its deployment is refused before a runner sees it (413
 * `inference_input_too_large`, `inference_output_too_large`); one that takes the model's runner
 * past its `memory_gb` all the same (or past what it can allocate) fails alone, with
 * `inference_out_of_memory`, and the deployment replaces the runner if it had to die. Either
 * way the next request is served. Each used to fail the deployment for good
 * (`failed`/`memory_limit_exceeded`).
 */
describe('requests that need more memory than the runner has', () => {
  let t: TestApp
  let ns: string
  const infer = (model: string, body: unknown) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${model}_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: typeof body === 'string' ? body : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    })
  const deploymentOf = async (model: string) => {
    const { state, reason } = (await getModel(t, ns, `${model}_1_0_0`)).deployment
    return { state, reason }
  }
  const restartsOf = async (model: string) => {
    const metrics = (await t.request({ method: 'GET', url: '/metrics' })).body
    const found = new RegExp(`berth_runner_restarts_total\\{[^}]*model="${model}"[^}]*\\} (\\d+)`)
    return Number(found.exec(metrics)?.[1] ?? 0)
  }

  before(async () => {
    t = await startTestApp({
      BERTH_MAX_INFER_TENSOR_BYTES: String(16 * 1024 ** 2),
    })
    ns = await createNamespace(t, 'request-memory')
    // Its hidden layer is 1024 wide: 4 FP32 per row in, 4 KiB per row in the middle.
    const wide = await uploadAndWait(
      t,
      ns,
      { name: 'wide', model_format: 'onnx', memory_gb: '0.25' },
      { 'model.onnx': mlpModel(4, 1024, 4, 3) },
    )
    assert.equal(wide.deployment_status, 'deployed')
    const ones = await uploadAndWait(
      t,
      ns,
      { name: 'ones', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': constantOfShapeModel() },
    )
    assert.equal(ones.deployment_status, 'deployed')
    const matmul = await uploadAndWait(
      t,
      ns,
      { name: 'matmul', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': matmulModel() },
    )
    assert.equal(matmul.deployment_status, 'deployed')
  })
  after(() => t.close())

  it('a [40000,1]·[1,40000] matmul (a 6.4 GB output) is refused with 413 inference_output_too_large; the deployment serves on', async () => {
    const ones = (n: number) => new Array(n).fill(1)
    const answer = await infer('matmul', {
      inputs: [
        { name: 'a', shape: [40000, 1], datatype: 'FP32', data: ones(40000) },
        { name: 'b', shape: [1, 40000], datatype: 'FP32', data: ones(40000) },
      ],
    })
    assert.equal(answer.statusCode, 413, answer.body)
    const error = answer.json().error
    assert.equal(error.code, 'inference_output_too_large')
    assert.deepEqual(error.details, {
      input_bytes: 320_000,
      output_bytes: 6_400_000_000,
      memory_bytes: 0.5 * 1024 ** 3,
      max_tensor_bytes: 16 * 1024 ** 2,
      output: 'c',
      shape: [40000, 40000],
    })
    assert.deepEqual(await deploymentOf('matmul'), { state: 'deployed', reason: 'ready' })
    const next = await infer('matmul', {
      inputs: [
        { name: 'a', shape: [1, 1], datatype: 'FP32', data: [2] },
        { name: 'b', shape: [1, 1], datatype: 'FP32', data: [3] },
      ],
    })
    assert.equal(next.statusCode, 200, next.body)
    assert.deepEqual(next.json().outputs[0].data, [6])
    // Its runner was never in danger: not restarted.
    assert.equal(await restartsOf('matmul'), 0)
  })

  it('inputs past BERTH_MAX_INFER_TENSOR_BYTES are refused with 413 inference_input_too_large', async () => {
    // 17.6 MB of binary FP32, under the 64 MiB body limit, over the 16 MiB of tensors.
    const rows = 1_100_000
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          {
            name: 'x',
            shape: [rows, 4],
            datatype: 'FP32',
            parameters: { binary_data_size: rows * 16 },
          },
        ],
      }),
    )
    const answer = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/wide_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: Buffer.concat([header, Buffer.alloc(rows * 16)]),
      headers: {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(header.length),
      },
    })
    assert.equal(answer.statusCode, 413, answer.body)
    assert.equal(answer.json().error.code, 'inference_input_too_large')
    assert.deepEqual(answer.json().error.details, {
      input_bytes: rows * 16,
      limit_bytes: 16 * 1024 ** 2,
    })
    assert.deepEqual(await deploymentOf('wide'), { state: 'deployed', reason: 'ready' })
  })

  it('a JSON request whose activations pass memory_gb fails with 413 inference_out_of_memory; the runner is replaced and the next request served', async () => {
    // The report's 66 MB JSON body, scaled down: 400,000 rows (4 MB of JSON) whose hidden
    // activations (1.6 GB) cannot fit in the 0.25 GB the model was deployed with.
    const rows = 400_000
    const data = new Array(rows).fill('[0.5,-0.25,1,2]').join(',')
    const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},4],"data":[${data}]}]}`
    const answer = await infer('wide', body)
    assert.equal(answer.statusCode, 413, answer.body)
    const error = answer.json().error
    assert.equal(error.code, 'inference_out_of_memory')
    assert.equal(error.type, 'PayloadTooLargeError')
    assert.equal(error.details.limit_bytes, 0.25 * 1024 ** 3)
    if (t.config.scheduler.driver === 'local') {
      // berth's memory watch saw it pass the limit.
      assert.ok(error.details.resident_bytes > error.details.limit_bytes)
    } else {
      // In a container the kernel holds the limit and killed it (the engine said so), unless
      // berth's memory watch, which reads a runner on its own node, saw it first.
      const watched = error.details.resident_bytes > error.details.limit_bytes
      assert.ok(error.details.killed_by === 'kernel' || watched, answer.body)
    }
    // Never failed: its runner was replaced (one restart), and the new one serves the model.
    await eventually(async () => {
      const { state } = await deploymentOf('wide')
      assert.notEqual(state, 'failed')
      return state === 'deployed' && (await restartsOf('wide')) === 1
    }, 20_000)
    assert.deepEqual(await deploymentOf('wide'), { state: 'deployed', reason: 'ready' })
    const next = await infer('wide', {
      inputs: [{ name: 'x', shape: [2, 4], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] }],
    })
    assert.equal(next.statusCode, 200, next.body)
    assert.deepEqual(next.json().outputs[0].shape, [2, 4])
  })

  it('an output ONNX Runtime cannot allocate fails with 413 inference_out_of_memory; the same runner serves on', async () => {
    // 2^46 floats: 256 TiB, more than any address space holds.
    const answer = await infer('ones', {
      inputs: [{ name: 'shape', shape: [1], datatype: 'INT64', data: [2 ** 46] }],
    })
    assert.equal(answer.statusCode, 413, answer.body)
    assert.equal(answer.json().error.code, 'inference_out_of_memory')
    const next = await infer('ones', {
      inputs: [{ name: 'shape', shape: [1], datatype: 'INT64', data: [3] }],
    })
    assert.equal(next.statusCode, 200, next.body)
    assert.deepEqual(next.json().outputs[0].data, [1, 1, 1])
    assert.deepEqual(await deploymentOf('ones'), { state: 'deployed', reason: 'ready' })
    assert.equal(await restartsOf('ones'), 0)
  })
})
