import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { HOSTILE_ARCHIVES } from '../fixtures/hostile-archives.js'
import { externalDataModel, mlpModel, unloadableModel } from '../fixtures/onnx-models.js'
import { tarGz, tarGzOf } from '../fixtures/tar-builder.js'
import { runAdminCommand } from '../helpers/admin.js'
import type { FormPart } from '../helpers/multipart.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  keptFiles,
  uploadModel,
} from '../helpers/uploads.js'

const MAX_ARCHIVE_BYTES = 256 * 1024

function fields(overrides: Record<string, string | undefined> = {}): FormPart[] {
  // Deployment has its own tests (serving.test.ts); here uploads stay undeployed.
  return formFields({
    name: 'tiny-mlp',
    version: '1.0.0',
    model_format: 'onnx',
    deploy: 'false',
    ...overrides,
  })
}

describe('model upload', () => {
  let t: TestApp
  let ns: string
  let onnxArchive: Buffer

  before(async () => {
    t = await startTestApp({ BERTH_MAX_ARCHIVE_BYTES: String(MAX_ARCHIVE_BYTES) })
    ns = await createNamespace(t, 'models-here')
    onnxArchive = await tarGzOf({ 'tiny-mlp/model.onnx': mlpModel(), 'tiny-mlp/README.md': 'hi' })
  })
  after(() => t.close())

  /** Where the file store keeps the archive a `berth://archives/KEY` URL names. */
  const storedArchive = (url: string) =>
    join(t.dataDir, 'archives', url.slice('berth://archives/'.length))
  const upload = (parts: FormPart[], options: { key?: string; namespace?: string } = {}) =>
    uploadModel(t, options.namespace ?? ns, parts, options.key)
  const file = archivePart

  it('accepts an ONNX archive, with the file before the fields, and describes it', async () => {
    const res = await upload([file(onnxArchive), ...fields({ num_cpus: '2', memory_gb: '1.5' })])
    assert.equal(res.statusCode, 200, res.body)
    const body = res.json()
    assert.deepEqual(Object.keys(body).sort(), [
      'deployment',
      'deployment_status',
      'endpoint',
      'model_archive_url',
      'model_id',
      'success',
    ])
    assert.equal(body.success, true)
    assert.equal(body.model_id, 'tiny-mlp_1_0_0')
    assert.equal(body.deployment_status, 'not_deployed')
    assert.equal(
      body.endpoint,
      `${t.config.http.publicUrl}/v1/namespaces/${ns}/models/tiny-mlp_1_0_0/infer`,
    )
    // The archive by its key in the store, not by a path of the server.
    assert.match(
      body.model_archive_url,
      /^berth:\/\/archives\/ns_[0-9a-f]+\/upl_[0-9a-f]+\.tar\.gz$/,
    )
    // The archive is stored unchanged.
    const stored = await readFile(storedArchive(body.model_archive_url))
    assert.deepEqual(stored, onnxArchive)

    const detail = await t.request({
      method: 'GET',
      url: `/v1/namespaces/models-here/models/tiny-mlp_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(detail.statusCode, 200)
    const model = detail.json().model
    assert.equal(model.model_hash, createHash('sha256').update(onnxArchive).digest('hex'))
    assert.equal(model.file_size_bytes, onnxArchive.length)
    assert.equal(model.model_archive_url, body.model_archive_url)
    assert.deepEqual(model.resource_requirements, { num_cpus: 2, num_gpus: 0, memory: 1610612736 })
    assert.equal(model.deployment_info.base_image, 'berth/runtime-minimal')
    assert.equal(model.deployment_info.endpoint, body.endpoint)
    assert.deepEqual(model.input_schema, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 16] }],
    })
    assert.deepEqual(model.output_schema, {
      outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 4] }],
    })
    assert.equal(model.deployment.state, 'not_deployed')
    assert.deepEqual(
      model.manifest.files.map((f: { path: string }) => f.path),
      ['README.md', 'model.onnx'],
    )
    assert.equal(model.manifest.runtime, 'onnx')
    assert.equal(model.manifest.onnx.ir_version, 8)
    assert.deepEqual(model.manifest.onnx.opsets, { '': 13 })
    assert.equal(model.manifest.onnx.producer, 'berth-test-fixtures')

    const metrics = await t.request({ method: 'GET', url: '/metrics' })
    assert.match(metrics.body, new RegExp(`^berth_upload_bytes_total ${onnxArchive.length}$`, 'm'))

    // The unpacked files are installed, and nothing is left in tmp/.
    const kept = await keptFiles(t.dataDir)
    assert.equal(kept.filter((f) => f.startsWith(join(t.dataDir, 'tmp'))).length, 0)
    assert.equal(kept.filter((f) => f.endsWith('/model.onnx')).length, 1)
  })

  it('accepts the fields before the file, and lists the models', async () => {
    const res = await upload([
      ...fields({ version: '1.0.1', task_type: 'embedding' }),
      file(onnxArchive),
    ])
    assert.equal(res.statusCode, 200, res.body)
    const list = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(list.statusCode, 200)
    const body = list.json()
    assert.equal(body.namespace_id, ns)
    assert.equal(body.total, 2)
    const item = body.models.find((m: { model_id: string }) => m.model_id === 'tiny-mlp_1_0_1')
    assert.equal(item.task_type, 'embedding')
    assert.equal(item.model_format, 'onnx')
    assert.equal(item.deployed, false)
    // berth's additions: what a dashboard shows of each model, without asking for each.
    assert.equal(item.runtime, 'onnx')
    assert.equal(item.deployment.state, 'not_deployed')
    assert.equal(item.deployment.replicas, 0)
    assert.equal(typeof item.resource_requirements.memory, 'number')
    assert.equal(item.serving.replicas, 1)
  })

  it('answers 409 model_already_exists for the same name and version, keeping nothing new', async () => {
    const before = await keptFiles(t.dataDir)
    const res = await upload([...fields(), file(onnxArchive)])
    assert.equal(res.statusCode, 409)
    assert.equal(res.json().error.code, 'model_already_exists')
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })

  it('keeps the serving settings given at upload, automatic by default', async () => {
    const res = await upload([
      file(onnxArchive),
      ...fields({
        version: '3.0.0',
        max_batch_size: '8',
        max_queue_delay_us: '250',
        replicas: '2',
        deploy: 'false',
      }),
    ])
    assert.equal(res.statusCode, 200, res.body)
    const model = (
      await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models/tiny-mlp_3_0_0`,
        key: BOOTSTRAP_KEY,
      })
    ).json().model
    // Without a deploy, served on its first request (and unloaded after the server's idle time).
    assert.deepEqual(model.serving, {
      max_batch_size: 8,
      max_queue_delay_us: 250,
      replicas: 2,
      load_policy: 'on_demand',
      idle_timeout_s: null,
      node_selector: {},
    })
    assert.equal(model.deployment.desired, 'on_demand')
    const plain = await upload([
      file(onnxArchive),
      ...fields({ version: '3.0.1', load_policy: 'eager' }),
    ])
    assert.equal(plain.statusCode, 200, plain.body)
    const auto = (
      await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models/tiny-mlp_3_0_1`,
        key: BOOTSTRAP_KEY,
      })
    ).json().model
    assert.deepEqual(auto.serving, {
      max_batch_size: null,
      max_queue_delay_us: 0,
      replicas: 1,
      load_policy: 'eager',
      idle_timeout_s: null,
      node_selector: {},
    })
    // Eager without a deploy: registered, served once deployed.
    assert.equal(auto.deployment.desired, 'not_deployed')
  })

  it('answers 422 listing every invalid or missing field, keeping nothing', async () => {
    const before = await keptFiles(t.dataDir)
    const res = await upload([
      file(onnxArchive),
      { name: 'name', value: '9bad' },
      { name: 'version', value: '1.0' },
      { name: 'model_format', value: 'tensorflow' },
      { name: 'num_cpus', value: '100' },
      { name: 'num_gpus', value: '1.5' },
      { name: 'memory_gb', value: 'lots' },
      { name: 'max_batch_size', value: '0' },
      { name: 'max_queue_delay_us', value: '-5' },
      { name: 'replicas', value: '17' },
    ])
    assert.equal(res.statusCode, 422)
    assert.equal(res.json().error.code, 'request_validation_failed')
    const locs = res
      .json()
      .detail.map((d: { loc: string[] }) => d.loc.join('.'))
      .sort()
    assert.deepEqual(locs, [
      'body.max_batch_size',
      'body.max_queue_delay_us',
      'body.memory_gb',
      'body.model_format',
      'body.name',
      'body.num_cpus',
      'body.num_gpus',
      'body.replicas',
      'body.version',
    ])
    // A field named like a prototype property is refused by the multipart parser itself.
    const sneaky = await upload([
      file(onnxArchive),
      ...fields({ version: '7.0.0' }),
      { name: '__proto__', value: 'polluted' },
    ])
    assert.equal(sneaky.statusCode, 400, sneaky.body)
    assert.equal(sneaky.json().error.code, 'request_malformed')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    const missing = await upload([{ name: 'framework', value: 'onnxruntime' }])
    assert.equal(missing.statusCode, 422)
    assert.deepEqual(
      missing
        .json()
        .detail.map((d: { loc: string[]; type: string }) => `${d.loc.join('.')}:${d.type}`)
        .sort(),
      [
        'body.file:missing',
        'body.model_format:missing',
        'body.name:missing',
        'body.version:missing',
      ],
    )
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })

  it('answers 403 to other tiers and 404 for unknown or foreign namespaces', async () => {
    await runAdminCommand(['org', 'create', 'small-co', '--tier', 'team'], t.config)
    const teamKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'small-co'], t.config)).api_key,
    )
    const refused = await upload([...fields({ version: '3.0.0' }), file(onnxArchive)], {
      key: teamKey,
    })
    assert.equal(refused.statusCode, 403)
    assert.equal(refused.json().error.type, 'ForbiddenError')
    assert.equal(refused.json().error.code, 'custom_models_not_enabled')
    // Refused before the body is read: the connection is closed rather than drained.
    assert.equal(refused.headers.connection, 'close')
    for (const url of [
      `/v1/namespaces/${ns}/models`,
      `/v1/namespaces/${ns}/models/tiny-mlp_1_0_0`,
    ]) {
      const res = await t.request({ method: 'GET', url, key: teamKey })
      assert.equal(res.statusCode, 403, url)
    }

    const missing = await upload([...fields(), file(onnxArchive)], { namespace: 'nowhere' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().error.code, 'namespace_not_found')
    assert.equal(missing.headers.connection, 'close')

    await runAdminCommand(['org', 'create', 'big-co', '--tier', 'enterprise'], t.config)
    const rival = String(
      (await runAdminCommand(['key', 'create', '--org', 'big-co'], t.config)).api_key,
    )
    const foreign = await upload([...fields({ version: '4.0.0' }), file(onnxArchive)], {
      key: rival,
    })
    assert.equal(foreign.statusCode, 404)
    const peek = await t.request({ method: 'GET', url: `/v1/namespaces/${ns}/models`, key: rival })
    assert.equal(peek.statusCode, 404)
  })

  it('answers 413 archive_too_large, early or while streaming, keeping nothing', async () => {
    const before = await keptFiles(t.dataDir)
    const huge = await upload([
      ...fields({ version: '5.0.0' }),
      file(Buffer.alloc(MAX_ARCHIVE_BYTES + 2 * 1024 * 1024)),
    ])
    assert.equal(huge.statusCode, 413)
    assert.equal(huge.json().error.code, 'archive_too_large')
    assert.equal(huge.headers.connection, 'close')
    // A sound archive just past the limit, so that its size is the only fault it has: bytes
    // that were not gzip could be refused as such before the limit is reached.
    const overLimit = await tarGzOf({ 'model.onnx': randomBytes(MAX_ARCHIVE_BYTES) })
    assert.ok(overLimit.length > MAX_ARCHIVE_BYTES)
    const justOver = await upload([...fields({ version: '5.0.1' }), file(overLimit)])
    assert.equal(justOver.statusCode, 413)
    assert.equal(justOver.json().error.code, 'archive_too_large')
    assert.deepEqual(await keptFiles(t.dataDir), before)
  })

  it('answers 400 with the archive code for hostile archives, keeping nothing', async () => {
    const before = await keptFiles(t.dataDir)
    const cases: Array<[Buffer, string]> = [
      [Buffer.from('not an archive'), 'archive_not_gzip'],
      [
        await tarGz([
          { header: { name: 'm/model.onnx' }, content: mlpModel() },
          { header: { name: 'm/escape', type: 'symlink', linkname: '/etc/passwd' } },
        ]),
        'archive_has_symlink',
      ],
      [await tarGzOf({ '../evil.onnx': mlpModel() }), 'archive_path_traversal'],
      [
        await tarGzOf({ 'm/model.onnx': Buffer.from('this is not protobuf at all \u0000\u00ff') }),
        'onnx_invalid',
      ],
      [await tarGzOf({ 'm/weights.safetensors': Buffer.alloc(64) }), 'model_format_mismatch'],
      [await tarGzOf({ 'm/model.onnx': unloadableModel() }), 'model_load_failed'],
    ]
    for (const [archive, code] of cases) {
      const res = await upload([...fields({ version: '6.0.0' }), file(archive)])
      assert.equal(res.statusCode, 400, code)
      assert.equal(res.json().error.type, 'BadRequestError')
      assert.equal(res.json().error.code, code)
    }
    assert.deepEqual(await keptFiles(t.dataDir), before)
    const list = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models`,
      key: BOOTSTRAP_KEY,
    })
    assert.ok(!list.json().models.some((m: { version: string }) => m.version === '6.0.0'))
  })

  it('accepts external data beside the model and refuses it elsewhere', async () => {
    const inside = externalDataModel('weights.bin')
    const ok = await upload([
      ...fields({ name: 'external', version: '1.0.0' }),
      file(await tarGzOf({ 'model.onnx': inside.model, 'weights.bin': inside.data })),
    ])
    assert.equal(ok.statusCode, 200, ok.body)
    const detail = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models/external_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.deepEqual(detail.json().model.manifest.onnx.external_data_files, ['weights.bin'])

    for (const location of ['../weights.bin', '/etc/passwd', 'missing.bin']) {
      const bad = externalDataModel(location)
      const res = await upload([
        ...fields({ name: 'external', version: '2.0.0' }),
        file(await tarGzOf({ 'model.onnx': bad.model, 'weights.bin': bad.data })),
      ])
      assert.equal(res.statusCode, 400, location)
      assert.equal(res.json().error.code, 'onnx_external_data_invalid', location)
    }
  })

  it('deletes a model with its archive and files; the namespace can go once empty', async () => {
    const res = await upload([...fields({ name: 'doomed', version: '1.0.0' }), file(onnxArchive)])
    assert.equal(res.statusCode, 200)
    const url = storedArchive(res.json().model_archive_url)
    await stat(url)
    const gone = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}/models/doomed_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(gone.statusCode, 200)
    assert.deepEqual(gone.json(), {
      success: true,
      model_id: 'doomed_1_0_0',
      message: 'model "doomed_1_0_0" deleted',
    })
    await assert.rejects(stat(url), { code: 'ENOENT' })
    const again = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models/doomed_1_0_0`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(again.statusCode, 404)
    assert.equal(again.json().error.code, 'model_not_found')

    const busy = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(busy.statusCode, 409)
    assert.equal(busy.json().error.code, 'namespace_not_empty')
    const list = await t.request({
      method: 'GET',
      url: `/v1/namespaces/${ns}/models`,
      key: BOOTSTRAP_KEY,
    })
    for (const m of list.json().models as Array<{ model_id: string }>) {
      const del = await t.request({
        method: 'DELETE',
        url: `/v1/namespaces/${ns}/models/${m.model_id}`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(del.statusCode, 200)
    }
    assert.deepEqual(await keptFiles(t.dataDir), [])
    const empty = await t.request({
      method: 'DELETE',
      url: `/v1/namespaces/${ns}`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(empty.statusCode, 200)
  })
})

describe('model upload of hostile archives', () => {
  let t: TestApp
  let ns: string
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'hostile')
    dir = await tempDir()
  })
  after(async () => {
    await t.close()
    await dir.remove()
  })

  for (const hostile of HOSTILE_ARCHIVES) {
    it(`answers 400 ${hostile.code} for ${hostile.what}, keeping nothing`, async () => {
      const path = join(dir.path, 'archive.tar.gz')
      await hostile.write(path)
      const before = await keptFiles(t.dataDir)
      const res = await uploadModel(t, ns, [
        ...formFields({ name: 'hostile', version: '1.0.0', model_format: 'onnx' }),
        archivePart(await readFile(path)),
      ])
      assert.equal(res.statusCode, 400, res.body)
      assert.equal(res.json().error.type, 'BadRequestError')
      assert.equal(res.json().error.code, hostile.code)
      assert.deepEqual(await keptFiles(t.dataDir), before)
      const list = await t.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(list.json().total, 0)
      // The traversal targets were never written.
      await assert.rejects(stat('/tmp/berth-evil'), { code: 'ENOENT' })
      await assert.rejects(stat(join(t.dataDir, '..', 'berth-evil')), { code: 'ENOENT' })
    })
  }
})
