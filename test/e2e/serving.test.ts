import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { matmulModel, mlpModel, multiModel, referenceMlp } from '../fixtures/onnx-models.js'
import { assertClose, binaryBody } from '../helpers/inference.js'
import { eventually } from '../helpers/processes.js'
import { runnersOf } from '../helpers/runners.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, getModel, uploadAndWait } from '../helpers/uploads.js'

const X = [0.5, -1, 2, 0.25, 1, 1, 1, 1, -0.5, 0.5, 3, -2, 0, 0, 0, 1]

/** Uploads `model.onnx` and waits until it is deployed (or failed). */
async function uploadOnnx(
  t: TestApp,
  ns: string,
  name: string,
  model: Buffer,
  fields: Record<string, string> = {},
) {
  return uploadAndWait(
    t,
    ns,
    { name, model_format: 'onnx', memory_gb: '0.5', ...fields },
    { 'model.onnx': model },
  )
}

function f32Bytes(values: number[]): Buffer {
  return Buffer.from(Float32Array.from(values).buffer)
}

describe('serving ONNX models', () => {
  let t: TestApp
  let ns: string
  const infer = (modelId: string, body: unknown, headers: Record<string, string> = {}) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body,
      headers,
    })

  before(async () => {
    t = await startTestApp({
      BERTH_RUNNER_RESTART_BACKOFF_MS: '50',
    })
    ns = await createNamespace(t, 'serving')
    const mlp = await uploadOnnx(t, ns, 'mlp', mlpModel(4, 8, 3, 7))
    assert.equal(mlp.deployment_status, 'deployed')
    assert.equal((await uploadOnnx(t, ns, 'multi', multiModel())).deployment_status, 'deployed')
    assert.equal((await uploadOnnx(t, ns, 'matmul', matmulModel())).deployment_status, 'deployed')
  })
  after(() => t.close())

  it('shows the deployment on the model record and in the list', async () => {
    const model = await getModel(t, ns, 'mlp_1_0_0')
    assert.equal(model.deployed, true)
    assert.equal(model.deployment.state, 'deployed')
    assert.equal(model.deployment.reason, 'ready')
    assert.equal(model.deployment.replicas, 1)
    assert.equal(typeof model.deployment_info.deployed_at, 'string')
    const list = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models`,
      key: BOOTSTRAP_KEY,
    })
    assert.ok(list.json().models.every((m: { deployed: boolean }) => m.deployed))
  })

  it('answers JSON tensors like a reference MLP, with a dynamic batch', async () => {
    for (const batch of [1, 4]) {
      const x = X.slice(0, batch * 4)
      const res = await infer('mlp_1_0_0', {
        id: 'req-1',
        inputs: [{ name: 'x', shape: [batch, 4], datatype: 'FP32', data: x }],
      })
      assert.equal(res.statusCode, 200, res.body)
      assert.match(String(res.headers['content-type']), /application\/json/)
      const body = res.json()
      assert.equal(body.id, 'req-1')
      assert.equal(body.model_name, 'mlp')
      assert.equal(body.model_version, '1.0.0')
      assert.equal(body.outputs.length, 1)
      const [y] = body.outputs
      assert.deepEqual([y.name, y.datatype, y.shape], ['y', 'FP32', [batch, 3]])
      assertClose(y.data, referenceMlp(x, batch, 4, 8, 3, 7))
    }
  })

  it('accepts nested row-major data as well as flat', async () => {
    const res = await infer('mlp_1_0_0', {
      inputs: [
        { name: 'x', shape: [2, 4], datatype: 'FP32', data: [X.slice(0, 4), X.slice(4, 8)] },
      ],
    })
    assert.equal(res.statusCode, 200, res.body)
    assertClose(res.json().outputs[0].data, referenceMlp(X.slice(0, 8), 2, 4, 8, 3, 7))
  })

  it('round-trips binary tensors, and mixes binary and JSON outputs on request', async () => {
    const x = X.slice(0, 8)
    const { body, headers } = binaryBody(
      {
        inputs: [
          { name: 'x', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } },
        ],
        parameters: { binary_data_output: true },
      },
      f32Bytes(x),
    )
    const res = await infer('mlp_1_0_0', body, headers)
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.headers['content-type'], 'application/octet-stream')
    const headerLength = Number(res.headers['inference-header-content-length'])
    const raw = res.rawPayload
    const header = JSON.parse(raw.subarray(0, headerLength).toString())
    assert.deepEqual(header.outputs, [
      { name: 'y', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } },
    ])
    const bytes = Uint8Array.from(raw.subarray(headerLength))
    assertClose(Array.from(new Float32Array(bytes.buffer)), referenceMlp(x, 2, 4, 8, 3, 7))

    // Binary in, JSON out (no binary_data_output): the same numbers.
    const plain = binaryBody(
      {
        inputs: [
          { name: 'x', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } },
        ],
      },
      f32Bytes(x),
    )
    const asJson = await infer('mlp_1_0_0', plain.body, plain.headers)
    assert.equal(asJson.statusCode, 200, asJson.body)
    assertClose(asJson.json().outputs[0].data, Array.from(new Float32Array(bytes.buffer)), 0)
  })

  it('runs several inputs and outputs, INT64 scalars exact, and picks outputs', async () => {
    const request = (k: unknown, kShape: number[], outputs?: object[]) => ({
      inputs: [
        { name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] },
        { name: 'k', shape: kShape, datatype: 'INT64', data: [k] },
        { name: 'm', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] },
      ],
      ...(outputs === undefined ? {} : { outputs }),
    })
    const res = await infer('multi_1_0_0', request(3, []))
    assert.equal(res.statusCode, 200, res.body)
    const byName = Object.fromEntries(res.json().outputs.map((o: { name: string }) => [o.name, o]))
    assert.deepEqual(byName.y, { name: 'y', datatype: 'FP32', shape: [1, 4], data: [3, 6, 9, 12] })
    assert.deepEqual(byName.k1, { name: 'k1', datatype: 'INT64', shape: [], data: [4] })
    assert.deepEqual(byName.m2.data, [2, 4, 6, 8, 10, 12])

    // A one-element tensor where the model declares a scalar; only the output asked for.
    const one = await infer('multi_1_0_0', request(41, [1], [{ name: 'k1' }]))
    assert.equal(one.statusCode, 200, one.body)
    assert.deepEqual(one.json().outputs, [{ name: 'k1', datatype: 'INT64', shape: [], data: [42] }])

    // Past 2^53, INT64 travels as a decimal string in and exact digits out.
    const big = await infer('multi_1_0_0', request('9007199254740993', [], [{ name: 'k1' }]))
    assert.equal(big.statusCode, 200, big.body)
    assert.match(big.body, /"data":\[9007199254740994\]/)
  })

  it('refuses every malformed request with a 400 that names the input', async () => {
    const x = (over: object = {}) => ({
      name: 'x',
      shape: [1, 4],
      datatype: 'FP32',
      data: [1, 2, 3, 4],
      ...over,
    })
    const k = { name: 'k', shape: [], datatype: 'INT64', data: [1] }
    const m = { name: 'm', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }
    const cases: ReadonlyArray<readonly [string, unknown, string, string | undefined]> = [
      ['unknown input', { inputs: [x(), k, m, { ...k, name: 'z' }] }, 'input_unknown', 'z'],
      ['missing input', { inputs: [x(), k] }, 'input_missing', 'm'],
      [
        'wrong datatype',
        { inputs: [x({ datatype: 'FP64' }), k, m] },
        'input_datatype_mismatch',
        'x',
      ],
      ['wrong rank', { inputs: [x({ shape: [4] }), k, m] }, 'input_shape_mismatch', 'x'],
      [
        'wrong fixed dim',
        { inputs: [x(), k, { ...m, shape: [3, 2] }] },
        'input_shape_mismatch',
        'm',
      ],
      [
        'not a scalar',
        { inputs: [x(), { ...k, shape: [2], data: [1, 2] }, m] },
        'input_shape_mismatch',
        'k',
      ],
      ['too few values', { inputs: [x({ data: [1, 2, 3] }), k, m] }, 'input_data_invalid', 'x'],
      ['fraction as INT64', { inputs: [x(), { ...k, data: [1.5] }, m] }, 'input_data_invalid', 'k'],
      [
        'text as FP32',
        { inputs: [x({ data: [1, 2, 'three', 4] }), k, m] },
        'input_data_invalid',
        'x',
      ],
      ['unknown datatype', { inputs: [x({ datatype: 'FP8' }), k, m] }, 'input_data_invalid', 'x'],
      [
        'unknown output',
        { inputs: [x(), k, m], outputs: [{ name: 'nope' }] },
        'output_unknown',
        undefined,
      ],
      ['no inputs', { inputs: [] }, 'infer_request_invalid', undefined],
      ['input twice', { inputs: [x(), x(), k, m] }, 'infer_request_invalid', undefined],
    ]
    for (const [what, body, code, input] of cases) {
      const res = await infer('multi_1_0_0', body)
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`)
      const error = res.json().error
      assert.equal(error.type, 'BadRequestError', what)
      assert.equal(error.code, code, what)
      if (input !== undefined) assert.equal(error.details.input, input, what)
    }

    const notJson = await infer('multi_1_0_0', '{"inputs": [', {
      'content-type': 'application/json',
    })
    assert.equal(notJson.statusCode, 400)
    assert.equal(notJson.json().error.code, 'infer_request_invalid')

    const { body, headers } = binaryBody(
      {
        inputs: [
          { name: 'x', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 12 } },
        ],
      },
      f32Bytes([1, 2, 3]),
    )
    const badSize = await infer('mlp_1_0_0', body, headers)
    assert.equal(badSize.statusCode, 400)
    assert.equal(badSize.json().error.code, 'input_data_invalid')

    const extra = binaryBody(
      {
        inputs: [
          { name: 'x', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } },
        ],
      },
      f32Bytes([1, 2, 3, 4, 5]),
    )
    const trailing = await infer('mlp_1_0_0', extra.body, extra.headers)
    assert.equal(trailing.statusCode, 400)
    assert.equal(trailing.json().error.code, 'infer_request_invalid')
  })

  it("answers a model's own failure with 400 inference_failed, and keeps serving", async () => {
    const bad = await infer('matmul_1_0_0', {
      inputs: [
        { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] },
        { name: 'b', shape: [3, 1], datatype: 'FP32', data: [1, 2, 3] },
      ],
    })
    assert.equal(bad.statusCode, 400, bad.body)
    assert.equal(bad.json().error.code, 'inference_failed')
    const good = await infer('matmul_1_0_0', {
      inputs: [
        { name: 'a', shape: [1, 2], datatype: 'FP32', data: [1, 2] },
        { name: 'b', shape: [2, 1], datatype: 'FP32', data: [3, 4] },
      ],
    })
    assert.equal(good.statusCode, 200, good.body)
    assert.deepEqual(good.json().outputs[0].data, [11])
  })

  it('answers 503 model_not_ready after undeploy, and serves again after deploy', async () => {
    const before = await getModel(t, ns, 'matmul_1_0_0')
    assert.equal(before.deployment.replicas, 1)
    const undeploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/matmul_1_0_0/undeploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(undeploy.statusCode, 200, undeploy.body)
    assert.equal(undeploy.json().deployment_status, 'not_deployed')
    const request = {
      inputs: [
        { name: 'a', shape: [1, 1], datatype: 'FP32', data: [2] },
        { name: 'b', shape: [1, 1], datatype: 'FP32', data: [3] },
      ],
    }
    const refused = await infer('matmul_1_0_0', request)
    assert.equal(refused.statusCode, 503)
    assert.equal(refused.json().error.type, 'UnavailableError')
    assert.equal(refused.json().error.code, 'model_not_ready')
    assert.equal(refused.json().error.details.state, 'not_deployed')
    assert.equal(refused.json().error.details.reason, 'undeployed')

    const deploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/matmul_1_0_0/deploy?wait=true`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(deploy.statusCode, 200, deploy.body)
    const answer = deploy.json()
    assert.deepEqual(
      { ...answer, message: typeof answer.message, deployment: answer.deployment.state },
      {
        success: true,
        model_id: 'matmul_1_0_0',
        namespace_id: ns,
        deployment_status: 'deployed',
        cached: false,
        message: 'string',
        deployment: 'deployed',
      },
    )
    const again = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/matmul_1_0_0/deploy`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(again.json().cached, true)
    const served = await infer('matmul_1_0_0', request)
    assert.equal(served.statusCode, 200, served.body)
    assert.deepEqual(served.json().outputs[0].data, [6])
  })

  it('batches concurrent requests without changing any answer', async () => {
    const requests = Array.from({ length: 16 }, (_, i) => {
      const rows = 1 + (i % 3)
      const x = Array.from({ length: rows * 4 }, (_, k) => Math.sin(i * 7 + k))
      return { inputs: [{ name: 'x', shape: [rows, 4], datatype: 'FP32', data: x }] }
    })
    const alone: unknown[] = []
    for (const body of requests) alone.push((await infer('mlp_1_0_0', body)).json().outputs)
    const metric = async () => {
      const text = (await t.request({ method: 'GET', url: '/metrics' })).body
      const read = (suffix: string) =>
        Number(
          new RegExp(
            `^berth_inference_batch_size_${suffix}\\{[^}]*model="mlp"[^}]*\\} (\\S+)$`,
            'm',
          ).exec(text)?.[1],
        )
      return { sum: read('sum'), count: read('count') }
    }
    const before = await metric()
    const together = await Promise.all(requests.map((body) => infer('mlp_1_0_0', body)))
    // Same names, shapes and values (to float rounding: a matrix product over more rows may
    // sum in another order).
    together.forEach((res, i) => {
      assert.equal(res.statusCode, 200, res.body)
      const [got] = res.json().outputs
      const [want] = alone[i] as Array<{ name: string; shape: number[]; data: number[] }>
      assert.deepEqual([got.name, got.shape], [want?.name, want?.shape], `request ${i}`)
      assertClose(got.data, want?.data ?? [], 1e-5)
    })
    // Fewer runner calls than requests: some ran together.
    const after = await metric()
    assert.equal(after.sum - before.sum, 16)
    assert.ok(after.count - before.count < 16, `${after.count - before.count} runner calls`)
  })

  it('takes batching settings on deploy, redeploying to apply them', async () => {
    assert.deepEqual((await getModel(t, ns, 'mlp_1_0_0')).serving, {
      max_batch_size: null,
      max_queue_delay_us: 0,
      replicas: 1,
      load_policy: 'eager',
      idle_timeout_s: null,
      node_selector: {},
    })
    const deploy = (body: unknown) =>
      t.request({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models/mlp_1_0_0/deploy?wait=true`,
        key: BOOTSTRAP_KEY,
        body,
      })
    const refused = await deploy({ max_batch_size: 0 })
    assert.equal(refused.statusCode, 422)
    const res = await deploy({ max_batch_size: 1, max_queue_delay_us: 100 })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().deployment_status, 'deployed')
    assert.equal(res.json().cached, false)
    assert.deepEqual((await getModel(t, ns, 'mlp_1_0_0')).serving, {
      max_batch_size: 1,
      max_queue_delay_us: 100,
      replicas: 1,
      load_policy: 'eager',
      idle_timeout_s: null,
      node_selector: {},
    })
    // With batches of one, eight concurrent requests are eight runner calls.
    const count = async () =>
      Number(
        /^berth_inference_batch_size_count\{[^}]*model="mlp"[^}]*\} (\S+)$/m.exec(
          (await t.request({ method: 'GET', url: '/metrics' })).body,
        )?.[1],
      )
    const before = await count()
    const body = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }
    await Promise.all(Array.from({ length: 8 }, () => infer('mlp_1_0_0', body)))
    assert.equal((await count()) - before, 8)
    // Back to automatic.
    assert.equal((await deploy({ max_batch_size: null, max_queue_delay_us: 0 })).statusCode, 200)
  })

  it('serves from as many runner processes as `replicas` asks, set on deploy', async () => {
    const deploy = (body: unknown) =>
      t.request({
        method: 'POST',
        url: `/v1/namespaces/${ns}/models/mlp_1_0_0/deploy?wait=true`,
        key: BOOTSTRAP_KEY,
        body,
      })
    assert.equal((await deploy({ replicas: 0 })).statusCode, 422)
    const res = await deploy({ replicas: 2 })
    assert.equal(res.statusCode, 200, res.body)
    assert.equal(res.json().deployment.replicas, 2)
    const model = await getModel(t, ns, 'mlp_1_0_0')
    assert.equal(model.serving.replicas, 2)
    assert.equal(model.deployment.replicas, 2)
    // Both answer, alike.
    const body = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }
    const answers = await Promise.all(Array.from({ length: 8 }, () => infer('mlp_1_0_0', body)))
    for (const answer of answers) {
      assert.equal(answer.statusCode, 200, answer.body)
      assert.deepEqual(answer.json().outputs, answers[0]?.json().outputs)
    }
    const back = await deploy({ replicas: 1 })
    assert.equal(back.json().deployment.replicas, 1)
  })

  it('counts requests by outcome and shows deployment states in /metrics', async () => {
    const text = (await t.request({ method: 'GET', url: '/metrics' })).body
    const series = (name: string, labels: string) =>
      new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]
    assert.ok(
      Number(series('berth_inference_requests_total', 'model="mlp".*outcome="success"')) >= 3,
    )
    assert.ok(
      Number(series('berth_inference_requests_total', 'model="multi".*outcome="bad_request"')) >=
        10,
    )
    assert.equal(series('berth_deployment_state', 'model="mlp".*state="deployed"'), '1')
    assert.equal(series('berth_deployment_state', 'model="mlp".*state="pending"'), '0')
    assert.ok(series('berth_inference_duration_seconds_count', 'model="mlp"'))
    assert.ok(series('berth_inference_queue_seconds_count', 'model="mlp"'))
    assert.ok(series('berth_inference_batch_size_count', 'model="mlp"'))
    assert.ok(series('berth_model_load_duration_seconds_count', 'model="mlp"'))
  })

  it('deletes a deployed model: its runner stops and its endpoint is gone', async () => {
    await uploadOnnx(t, ns, 'doomed', mlpModel())
    const before = await runnersOf(t)
    const del = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}/models/doomed_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(del.statusCode, 200, del.body)
    // Exactly one runner (the model's) has ended by the time the delete answers.
    const stopped: string[] = []
    for (const runner of before) if (!(await runner.alive())) stopped.push(runner.id)
    assert.equal(stopped.length, 1, `${before.length} runners before`)
    // And what it left (its pid file, container or service) is cleaned up after it: at once
    // for a process, once the engine has removed it for a container.
    const cleaned = async () => !(await runnersOf(t)).some((r) => stopped.includes(r.id))
    if (t.config.scheduler.driver === 'local') assert.ok(await cleaned(), 'its pid file is gone')
    else await eventually(cleaned)
    const res = await infer('doomed_1_0_0', { inputs: [] })
    assert.equal(res.statusCode, 404)
  })
})
