import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { runAdminCommand } from '../helpers/admin.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, formFields, uploadModel } from '../helpers/uploads.js'

interface NodeDeployment {
  namespace: string
  model_id: string
  state: string
  load_policy: string
  processes: number[]
  resident_bytes: number | null
  charged_memory_bytes: number
  last_used_at: string | null
}

/**
 * Small on-demand models of one organization share a runner process, never with another
 * organization's; a crash of the shared process is recovered model by model; `GET /v1/node`
 * shows all of it, each organization only its own.
 */
describe('shared runners and the node view', () => {
  let t: TestApp
  let rivalKey: string
  const x = { name: 'x', shape: [1, 16], datatype: 'FP32', data: new Array(16).fill(0.25) }

  const namespace = async (name: string, key: string) => {
    const res = await t.request({
      method: 'POST',
      url: '/v1/namespaces',
      key,
      body: { namespace_name: name },
    })
    assert.equal(res.statusCode, 200, res.body)
    return res.json().namespace_id as string
  }
  const upload = async (ns: string, name: string, key: string, seed: number) => {
    const res = await uploadModel(
      t,
      ns,
      [
        ...formFields({ name, version: '1.0.0', model_format: 'onnx', deploy: 'false' }),
        archivePart(await tarGzOf({ 'model.onnx': mlpModel(16, 32, 4, seed) })),
      ],
      key,
    )
    assert.equal(res.statusCode, 200, res.body)
  }
  const infer = (ns: string, modelId: string, key: string) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key,
      body: { inputs: [x] },
    })
  const node = async (key: string) => {
    const res = await t.request({ method: 'GET', url: '/v1/node', key })
    assert.equal(res.statusCode, 200, res.body)
    return res.json() as {
      node: { memory_bytes: number; reserved: { memory_bytes: number } }
      deployments: NodeDeployment[]
    }
  }

  before(async () => {
    t = await startTestApp({ BERTH_IDLE_TIMEOUT_S: '0', BERTH_RUNNER_RESTART_BACKOFF_MS: '50' })
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
  })
  after(() => t.close())

  it('packs one organization’s on-demand models into one process, and recovers them after it is killed', async () => {
    const ns = await namespace('packed', BOOTSTRAP_KEY)
    const rivalNs = await namespace('rival-space', rivalKey)
    const names = ['small-a', 'small-b', 'small-c']
    for (const [i, name] of names.entries()) await upload(ns, name, BOOTSTRAP_KEY, i + 1)
    await upload(rivalNs, 'theirs', rivalKey, 9)
    const first = new Map<string, string>()
    for (const name of names) {
      const res = await infer(ns, `${name}_1_0_0`, BOOTSTRAP_KEY)
      assert.equal(res.statusCode, 200, res.body)
      first.set(name, JSON.stringify(res.json().outputs))
    }
    assert.equal((await infer(rivalNs, 'theirs_1_0_0', rivalKey)).statusCode, 200)

    const mine = await node(BOOTSTRAP_KEY)
    assert.ok(mine.node.memory_bytes > 0)
    assert.deepEqual(
      mine.deployments.map((d) => d.model_id).sort(),
      names.map((n) => `${n}_1_0_0`),
    )
    const runners = new Set(mine.deployments.flatMap((d) => d.processes))
    assert.equal(runners.size, 1, 'one process for the three')
    for (const d of mine.deployments) {
      assert.deepEqual([d.state, d.load_policy, d.namespace], ['deployed', 'on_demand', 'packed'])
      assert.ok(d.resident_bytes !== null && d.resident_bytes > 0)
      assert.ok(d.charged_memory_bytes > 0)
      assert.equal(typeof d.last_used_at, 'string')
    }
    // Their shares add up to one process (about 90 MiB), not three (about 270 MiB).
    const resident = mine.deployments.reduce((sum, d) => sum + (d.resident_bytes ?? 0), 0)
    assert.ok(resident < 150 * 1024 ** 2, `${resident} bytes resident for the three`)
    const theirs = await node(rivalKey)
    assert.deepEqual(
      theirs.deployments.map((d) => d.model_id),
      ['theirs_1_0_0'],
    )
    assert.ok(!runners.has(theirs.deployments[0]?.processes[0] ?? 0), 'never in their process')

    // The shared process dies: each model restarts on its own and answers as before.
    const [pid] = runners
    process.kill(Number(pid), 'SIGKILL')
    await eventually(async () => {
      const answers = await Promise.all(names.map((n) => infer(ns, `${n}_1_0_0`, BOOTSTRAP_KEY)))
      return answers.every((res) => res.statusCode === 200)
    }, 20_000)
    for (const name of names) {
      const res = await infer(ns, `${name}_1_0_0`, BOOTSTRAP_KEY)
      assert.equal(JSON.stringify(res.json().outputs), first.get(name))
    }
    const after = await node(BOOTSTRAP_KEY)
    assert.ok(!after.deployments.some((d) => d.processes.includes(pid ?? 0)))
  })

  it('shows resident memory and node use in /metrics', async () => {
    const text = (await t.request({ method: 'GET', url: '/metrics' })).body
    assert.match(text, /^berth_node_capacity\{resource="memory_bytes"\} \d+/m)
    assert.match(text, /^berth_node_reserved\{resource="memory_bytes"\} \d+/m)
    assert.match(text, /^berth_model_resident_bytes\{[^}]*model="small-a"[^}]*\} [1-9]\d*/m)
    assert.match(text, /^berth_model_active_requests\{[^}]*model="small-a"[^}]*\} 0/m)
  })
})
