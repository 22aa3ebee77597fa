import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import type { FormPart } from '../helpers/multipart.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  getModel,
  keptFiles,
  uploadModel,
} from '../helpers/uploads.js'

/**
 * How the upload form's text fields are read (issue 13, report 9): numbers only as decimal
 * digits, a memory request a runner can live in, unknown fields ignored while small and refused
 * when large.
 */
describe('upload form fields', () => {
  let t: TestApp
  let ns: string
  let archive: Buffer
  let version = 0

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'form-fields')
    archive = await tarGzOf({ 'model.onnx': mlpModel() })
  })
  after(() => t.close())

  /** An upload of the tiny model under a fresh version, undeployed, with `extra` parts added. */
  const upload = (extra: FormPart[], overrides: Record<string, string> = {}) => {
    version += 1
    return uploadModel(t, ns, [
      archivePart(archive),
      ...formFields({
        name: 'fields',
        version: `1.0.${version}`,
        model_format: 'onnx',
        deploy: 'false',
        ...overrides,
      }),
      ...extra,
    ])
  }
  const locsOf = (res: LightMyRequestResponse) =>
    (res.json().detail as Array<{ loc: string[] }>).map((d) => d.loc.join('.'))

  it('refuses numbers not written in decimal digits: hex, octal, binary, exponents, blanks', async () => {
    const before = await keptFiles(t.dataDir)
    const cases: Array<[string, string]> = [
      ['num_cpus', '0x10'],
      ['num_cpus', '0o20'],
      ['num_cpus', '0b10000'],
      ['num_cpus', '1e1'],
      ['num_cpus', 'Infinity'],
      ['num_cpus', '1_6'],
      ['num_cpus', ' '],
      ['num_gpus', '0x0'],
      ['num_gpus', ' '],
      ['num_gpus', '1e0'],
      ['num_gpus', '1.0'],
      ['memory_gb', '0x1'],
      ['memory_gb', '1e0'],
      ['memory_gb', '1e-300'],
      ['max_batch_size', '0x10'],
      ['max_queue_delay_us', ' '],
      ['max_queue_delay_us', '0b1'],
      ['replicas', '1e0'],
    ]
    for (const [field, value] of cases) {
      const res = await upload([], { [field]: value })
      const what = `${field}=${JSON.stringify(value)}: ${res.statusCode} ${res.body}`
      assert.equal(res.statusCode, 422, what)
      assert.equal(res.json().error.code, 'request_validation_failed', what)
      assert.deepEqual(locsOf(res), [`body.${field}`], what)
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })

  it('reads plain decimals, with a sign or blanks around them as pydantic does', async () => {
    const res = await upload([], {
      num_cpus: ' +2.50 ',
      num_gpus: '0',
      memory_gb: '.5',
      max_batch_size: '016',
      replicas: '\t2',
    })
    assert.equal(res.statusCode, 200, res.body)
    const model = await getModel(t, ns, res.json().model_id)
    assert.deepEqual(model.resource_requirements, {
      num_cpus: 2.5,
      num_gpus: 0,
      memory: 512 * 1024 ** 2,
    })
    assert.equal(model.serving.max_batch_size, 16)
    assert.equal(model.serving.replicas, 2)
  })

  it('takes an empty field as absent, as FastAPI does: its default applies', async () => {
    const res = await upload([], { num_cpus: '', memory_gb: '', num_gpus: '', replicas: '' })
    assert.equal(res.statusCode, 200, res.body)
    const model = await getModel(t, ns, res.json().model_id)
    assert.deepEqual(model.resource_requirements, {
      num_cpus: 1,
      num_gpus: 0,
      memory: 4 * 1024 ** 3,
    })
    assert.equal(model.serving.replicas, 1)
  })

  it('reads node_selector as a JSON object of node labels, shown in serving and changed on deploy', async () => {
    const before = await keptFiles(t.dataDir)
    const tooMany = JSON.stringify(
      Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`l${i}`, 'x'])),
    )
    for (const bad of [
      'gpu=a100',
      '["gpu"]',
      '{"gpu": 1}',
      '{"gpu": "a100 && node.role==manager"}',
      '{"bad label": "x"}',
      '{"gpu": "a==b"}',
      // What Swarm's constraints refuse: a / in a name, a one-letter name, an empty value.
      '{"example.com/gpu": "x"}',
      '{"g": "x"}',
      '{"gpu": ""}',
      tooMany,
      `{"a": "${'['.repeat(5000)}"}`,
    ]) {
      const res = await upload([], { node_selector: bad })
      assert.equal(res.statusCode, 422, `${bad.slice(0, 60)}: ${res.body}`)
      const locs = locsOf(res)
      assert.ok(locs.length > 0 && locs.every((l) => l.startsWith('body.node_selector')), res.body)
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)

    const res = await upload([], { node_selector: '{"gpu": "a100", "zone.name": "eu-1"}' })
    assert.equal(res.statusCode, 200, res.body)
    const id = res.json().model_id
    assert.deepEqual((await getModel(t, ns, id)).serving.node_selector, {
      gpu: 'a100',
      'zone.name': 'eu-1',
    })
    const plain = await upload([], {})
    assert.deepEqual((await getModel(t, ns, plain.json().model_id)).serving.node_selector, {})
    const deploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${id}/deploy`,
      key: BOOTSTRAP_KEY,
      body: { node_selector: { gpu: 'h100' } },
    })
    assert.equal(deploy.statusCode, 200, deploy.body)
    assert.deepEqual((await getModel(t, ns, id)).serving.node_selector, { gpu: 'h100' })
  })

  it('refuses a memory request a runner cannot live in, naming memory_gb', async () => {
    // 1e-300 GiB used to be stored as 0 bytes and the deployment failed right after `deployed`.
    for (const memory of ['0.0000000001', '0.000001', '0.2', '0']) {
      const res = await upload([], { memory_gb: memory, deploy: 'true' })
      assert.equal(res.statusCode, 422, `${memory}: ${res.body}`)
      assert.deepEqual(locsOf(res), ['body.memory_gb'])
    }
    const least = await upload([], { memory_gb: '0.25' })
    assert.equal(least.statusCode, 200, least.body)
    const model = await getModel(t, ns, least.json().model_id)
    assert.equal(model.resource_requirements.memory, 256 * 1024 ** 2)
  })

  it('refuses the same tiny memory in the organization registry, in bytes', async () => {
    const created = await t.request({
      method: 'POST',
      url: '/v1/models/uploads',
      key: BOOTSTRAP_KEY,
      body: {
        name: 'org-tiny',
        version: '1.0.0',
        model_format: 'onnx',
        resource_requirements: { memory: 1 },
      },
    })
    assert.equal(created.statusCode, 422, created.body)
    assert.deepEqual(locsOf(created), ['body.resource_requirements.memory'])
    const enabled = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/org/anything_1_0_0/enable`,
      key: BOOTSTRAP_KEY,
      body: { resource_overrides: { memory: 0 } },
    })
    assert.equal(enabled.statusCode, 422, enabled.body)
    assert.deepEqual(locsOf(enabled), ['body.resource_overrides.memory'])
  })

  it('ignores small unknown fields, as a client sending newer fields expects', async () => {
    const res = await upload([
      { name: 'description', value: 'a field berth does not know' },
      { name: 'x-client', value: 'mixpeek-python/1.2.3' },
    ])
    assert.equal(res.statusCode, 200, res.body)
    const model = await getModel(t, ns, res.json().model_id)
    assert.equal(model.description, undefined)
    assert.equal(JSON.stringify(model).includes('mixpeek-python'), false)
  })

  it('refuses a field past its size, known or not, and too many fields, keeping nothing', async () => {
    const before = await keptFiles(t.dataDir)
    const huge = 'x'.repeat(200 * 1024)
    for (const part of [
      { name: 'unknown_field', value: huge },
      { name: 'framework', value: huge },
    ]) {
      const res = await upload([part])
      assert.equal(res.statusCode, 413, res.body)
      assert.equal(res.json().error.code, 'form_field_too_large')
      assert.equal(res.json().error.details.field, part.name)
      assert.equal(res.headers.connection, 'close')
    }
    const longName = await upload([{ name: 'n'.repeat(300), value: '1' }])
    assert.equal(longName.statusCode, 413, longName.body)
    assert.equal(longName.json().error.code, 'form_field_too_large')

    const many = Array.from({ length: 40 }, (_, i) => ({ name: `extra_${i}`, value: 'v' }))
    const crowded = await upload(many)
    assert.equal(crowded.statusCode, 413, crowded.body)
    assert.equal(crowded.json().error.code, 'form_too_many_fields')
    assert.equal(crowded.headers.connection, 'close')
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })
})
