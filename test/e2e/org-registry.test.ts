import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { runAdminCommand } from '../helpers/admin.js'
import { listBucket, type S3ForTests, s3ForTests, testBucket } from '../helpers/services.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace } from '../helpers/uploads.js'

const X = [0.5, -1, 2, 0.25, 1, 1, 1, 1, -0.5, 0.5, 3, -2, 0, 0, 0, 1]

interface Store {
  readonly env: Record<string, string>
  /** Objects in the artifact store (the orphan check). */
  readonly list: () => Promise<string[]>
}

/**
 * PUTs the archive to a presigned URL: berth's own (the file store: through the app, no bearer
 * key) or S3's (straight to the S3 server).
 */
async function putArchive(t: TestApp, url: string, archive: Buffer) {
  const parsed = new URL(url)
  if (parsed.pathname.startsWith('/v1/models/uploads/')) {
    const res = await t.request({
      method: 'PUT',
      url: `${parsed.pathname}${parsed.search}`,
      body: archive,
      headers: { 'content-type': 'application/gzip' },
    })
    return { status: res.statusCode, body: res.body }
  }
  const res = await fetch(url, {
    method: 'PUT',
    body: archive,
    headers: { 'content-type': 'application/gzip' },
  })
  return { status: res.status, body: await res.text() }
}

function orgRegistry(label: string, store: () => Promise<Store | { skip: string }>) {
  describe(`organization registry: ${label}`, () => {
    let t: TestApp | undefined
    after(() => t?.close())
    const as = (key: string) => ({
      post: (url: string, body?: unknown) =>
        (t as TestApp).request({
          method: 'POST',
          url,
          key,
          ...(body === undefined ? {} : { body }),
        }),
      get: (url: string) => (t as TestApp).request({ method: 'GET', url, key }),
      del: (url: string) => (t as TestApp).request({ method: 'DELETE', url, key }),
    })
    const api = as(BOOTSTRAP_KEY)

    it('presigned upload → confirm → enable → serve → disable → delete, with every refusal', async (ctx) => {
      const s = await store()
      if ('skip' in s) {
        ctx.skip(s.skip)
        return
      }
      t = await startTestApp({ ...s.env, BERTH_MAX_ARCHIVE_BYTES: String(1024 * 1024) })
      const model = mlpModel(16, 32, 4, 7)
      const archive = await tarGzOf({ 'model.onnx': model })

      // Mixpeek's rules on the request.
      for (const bad of [
        { name: '9lives', version: '1.0.0', model_format: 'onnx' },
        { name: 'encoder', version: '1.0', model_format: 'onnx' },
        { name: 'encoder', version: '1.0.0', model_format: 'tflite' },
        { name: 'encoder', version: '1.0.0', model_format: 'onnx', presigned_url_expiration: 59 },
        {
          name: 'encoder',
          version: '1.0.0',
          model_format: 'onnx',
          presigned_url_expiration: 86_401,
        },
      ]) {
        const res = await api.post('/v1/models/uploads', bad)
        assert.equal(res.statusCode, 422, JSON.stringify(bad))
      }
      const before = Date.now()
      const created = await api.post('/v1/models/uploads', {
        name: 'shared-mlp',
        version: '1.0.0',
        model_format: 'onnx',
        description: 'an MLP for every namespace',
        resource_requirements: { num_cpus: 1, num_gpus: 0, memory: 512 * 1024 ** 2 },
      })
      assert.equal(created.statusCode, 200, created.body)
      const ticket = created.json()
      assert.match(ticket.upload_id, /^upl_/)
      const expiresIn = Date.parse(ticket.expires_at) - before
      assert.ok(expiresIn > 3590_000 && expiresIn <= 3601_000, `${expiresIn}`)
      assert.equal(
        (
          await api.post('/v1/models/uploads', {
            name: 'shared-mlp',
            version: '1.0.0',
            model_format: 'onnx',
          })
        ).statusCode,
        409,
      )

      // Confirming before the archive is there, or an upload that does not exist.
      const early = await api.post(`/v1/models/uploads/${ticket.upload_id}/confirm`)
      assert.equal(early.statusCode, 400)
      assert.equal(early.json().error.code, 'upload_not_received')
      assert.equal(
        (await api.post('/v1/models/uploads/upl_nope/confirm')).json().error.code,
        'upload_not_found',
      )

      // A tampered or expired URL is refused (403) and stores nothing.
      const url = new URL(ticket.presigned_url)
      if (url.pathname.startsWith('/v1/')) {
        const signature = url.searchParams.get('signature') ?? ''
        const tampered = new URL(url)
        tampered.searchParams.set(
          'signature',
          signature.replace(/^./, signature.startsWith('a') ? 'b' : 'a'),
        )
        const res = await putArchive(t, tampered.toString(), archive)
        assert.equal(res.status, 403, res.body)
        assert.equal(JSON.parse(res.body).error.code, 'upload_url_invalid')
        // Signed right, with the server's key, but already expired.
        const key = await readFile(join(t.dataDir, 'upload-signing-key'), 'utf8')
        const past = Math.floor(Date.now() / 1000) - 1
        const expired = new URL(url)
        expired.searchParams.set('expires', String(past))
        expired.searchParams.set(
          'signature',
          createHmac('sha256', key.trim()).update(`${ticket.upload_id}\n${past}`).digest('hex'),
        )
        const late = await putArchive(t, expired.toString(), archive)
        assert.equal(late.status, 403, late.body)
      } else {
        const tampered = new URL(url)
        tampered.searchParams.set('X-Amz-Signature', '0'.repeat(64))
        assert.equal((await putArchive(t, tampered.toString(), archive)).status, 403)
      }
      assert.deepEqual(await s.list(), [])

      const put = await putArchive(t, ticket.presigned_url, archive)
      assert.equal(put.status, 200, put.body)
      // The URL is a bearer credential: its signature never reaches the logs.
      const signed = new URL(ticket.presigned_url).searchParams
      const secret = signed.get('signature') ?? signed.get('X-Amz-Signature') ?? ''
      assert.ok(secret.length > 0)
      assert.ok(!t.logs().includes(secret), 'the upload URL signature was logged')
      const confirmed = await api.post(`/v1/models/uploads/${ticket.upload_id}/confirm`, {})
      assert.equal(confirmed.statusCode, 200, confirmed.body)
      assert.equal(confirmed.json().validation_status, 'passed')
      assert.equal(confirmed.json().model_id, 'shared-mlp_1_0_0')
      const detail = (await api.get('/v1/models/shared-mlp_1_0_0')).json().model
      assert.equal(detail.model_hash, createHash('sha256').update(archive).digest('hex'))
      assert.equal(detail.validation_status, 'passed')
      assert.equal(detail.resource_requirements.memory, 512 * 1024 ** 2)
      // Mixpeek's OrgModelDocument: not deployed anywhere yet; its graph's tensors.
      assert.equal(detail.deployed, false)
      assert.deepEqual(detail.deployment_info, { deployed_at: null })
      assert.deepEqual(detail.input_schema, {
        inputs: [{ name: 'x', datatype: 'FP32', shape: ['batch', 16] }],
      })
      assert.deepEqual(detail.output_schema, {
        outputs: [{ name: 'y', datatype: 'FP32', shape: ['batch', 4] }],
      })
      const listed = (await api.get('/v1/models')).json()
      assert.deepEqual(
        listed.models.map((m: { model_id: string; deployed: boolean }) => [m.model_id, m.deployed]),
        [['shared-mlp_1_0_0', false]],
      )

      // An archive that fails validation: recorded as failed, its archive removed.
      const broken = (
        await api.post('/v1/models/uploads', {
          name: 'broken',
          version: '1.0.0',
          model_format: 'onnx',
        })
      ).json()
      assert.equal(
        (await putArchive(t, broken.presigned_url, Buffer.from('not a tarball'))).status,
        200,
      )
      const refused = await api.post(`/v1/models/uploads/${broken.upload_id}/confirm`)
      assert.equal(refused.statusCode, 200, refused.body)
      assert.equal(refused.json().success, false)
      assert.equal(refused.json().validation_status, 'failed')
      assert.match(refused.json().validation_errors[0], /^archive_not_gzip/)
      const brokenDetail = (await api.get('/v1/models/broken_1_0_0')).json().model
      assert.equal(brokenDetail.validation_status, 'failed')
      // No resource_requirements asked: a direct upload's defaults.
      assert.deepEqual(brokenDetail.resource_requirements, {
        num_cpus: 1,
        num_gpus: 0,
        memory: 4 * 1024 ** 3,
      })

      // Past BERTH_MAX_ARCHIVE_BYTES: berth's URL refuses it (413); S3 takes any size, so the
      // confirm refuses it instead. Either way nothing is kept.
      const declared = await api.post('/v1/models/uploads', {
        name: 'huge',
        version: '1.0.0',
        model_format: 'onnx',
        file_size_bytes: 2 * 1024 * 1024,
      })
      assert.equal(declared.statusCode, 413)
      assert.equal(declared.json().error.code, 'archive_too_large')
      const huge = (
        await api.post('/v1/models/uploads', {
          name: 'huge',
          version: '1.0.0',
          model_format: 'onnx',
        })
      ).json()
      const big = await putArchive(t, huge.presigned_url, randomBytes(2 * 1024 * 1024))
      if (new URL(huge.presigned_url).pathname.startsWith('/v1/')) {
        assert.equal(big.status, 413, big.body)
        assert.equal(JSON.parse(big.body).error.code, 'archive_too_large')
      } else {
        assert.equal(big.status, 200, big.body)
        const tooBig = (await api.post(`/v1/models/uploads/${huge.upload_id}/confirm`)).json()
        assert.equal(tooBig.validation_status, 'failed')
        assert.match(tooBig.validation_errors[0], /^archive_too_large/)
      }
      assert.equal((await api.del('/v1/models/huge_1_0_0')).statusCode, 200)

      // Enable: in the namespace like a direct upload.
      const ns = await createNamespace(t, 'consumers')
      const notValid = await api.post(`/v1/namespaces/${ns}/models/org/broken_1_0_0/enable`, {})
      assert.equal(notValid.statusCode, 400)
      assert.equal(notValid.json().error.code, 'org_model_not_validated')
      assert.equal(
        (await api.post(`/v1/namespaces/${ns}/models/org/ghost_1_0_0/enable`, {})).statusCode,
        404,
      )
      const enabled = await api.post(
        `/v1/namespaces/${ns}/models/org/shared-mlp_1_0_0/enable?wait=true`,
        { deploy: true, resource_overrides: { num_cpus: 0.5 } },
      )
      assert.equal(enabled.statusCode, 200, enabled.body)
      assert.equal(enabled.json().deployment_status, 'deployed')
      assert.equal(
        (await api.post(`/v1/namespaces/${ns}/models/org/shared-mlp_1_0_0/enable`, {})).statusCode,
        409,
      )
      const inNamespace = (await api.get(`/v1/namespaces/${ns}/models/shared-mlp_1_0_0`)).json()
        .model
      assert.equal(inNamespace.resource_requirements.num_cpus, 0.5)
      assert.equal(inNamespace.model_archive_url, detail.s3_archive_url)
      const deployedDetail = (await api.get('/v1/models/shared-mlp_1_0_0')).json().model
      assert.equal(deployedDetail.deployed, true)
      assert.equal(
        deployedDetail.deployment_info.deployed_at,
        inNamespace.deployment_info.deployed_at,
      )
      assert.ok(Date.parse(deployedDetail.deployment_info.deployed_at) >= before)
      assert.deepEqual(deployedDetail.enabled_in, [ns])
      const infer = await api.post(`/v1/namespaces/${ns}/models/shared-mlp_1_0_0/infer`, {
        inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: X }],
      })
      assert.equal(infer.statusCode, 200, infer.body)
      const want = referenceMlp(X, 1, 16, 32, 4, 7)
      infer.json().outputs[0].data.forEach((v: number, i: number) => {
        assert.ok(Math.abs(v - (want[i] as number)) < 1e-5)
      })
      const available = (await api.get(`/v1/namespaces/${ns}/models/available`)).json()
      assert.deepEqual(
        available.models.map((m: { model_id: string; enabled_in_namespace: boolean }) => [
          m.model_id,
          m.enabled_in_namespace,
        ]),
        [
          ['shared-mlp_1_0_0', true],
          ['broken_1_0_0', false],
        ],
      )

      // Another organization sees none of it.
      await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
      const rival = as(
        String((await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key),
      )
      assert.deepEqual((await rival.get('/v1/models')).json().models, [])
      assert.equal((await rival.get('/v1/models/shared-mlp_1_0_0')).statusCode, 404)
      assert.equal((await rival.del('/v1/models/shared-mlp_1_0_0')).statusCode, 404)
      assert.equal(
        (await rival.post(`/v1/models/uploads/${ticket.upload_id}/confirm`)).statusCode,
        404,
      )

      // Delete is refused while enabled; disable keeps the org model; then delete removes all.
      const blocked = await api.del('/v1/models/shared-mlp_1_0_0')
      assert.equal(blocked.statusCode, 409)
      assert.equal(blocked.json().error.code, 'org_model_enabled')
      assert.equal((await api.get('/v1/models')).json().models[0].deployed, true)
      const disabled = await api.post(`/v1/namespaces/${ns}/models/org/shared-mlp_1_0_0/disable`)
      assert.equal(disabled.statusCode, 200, disabled.body)
      assert.equal(
        (await api.post(`/v1/namespaces/${ns}/models/org/shared-mlp_1_0_0/disable`)).json().error
          .code,
        'org_model_not_enabled',
      )
      assert.equal((await api.get(`/v1/namespaces/${ns}/models/shared-mlp_1_0_0`)).statusCode, 404)
      assert.equal((await s.list()).length, 1, 'the org archive stays while the org model does')
      for (const id of ['shared-mlp_1_0_0', 'broken_1_0_0']) {
        assert.equal((await api.del(`/v1/models/${id}`)).statusCode, 200)
        assert.equal((await api.get(`/v1/models/${id}`)).statusCode, 404)
      }
      assert.deepEqual(await s.list(), [])
    })
  })
}

orgRegistry('file store (berth-signed upload URLs)', async () => {
  const dir = await tempDir('berth-org-')
  after(() => dir.remove())
  const root = join(dir.path, 'archives')
  return {
    env: { BERTH_STORAGE_URL: `file://${root}` },
    list: async () => {
      const { readdir } = await import('node:fs/promises')
      const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => [])
      return entries.filter((e) => e.isFile()).map((e) => e.name)
    },
  }
})

orgRegistry('S3 (radosgw presigned URLs)', async () => {
  const s3: S3ForTests | { skip: string } = s3ForTests()
  if ('skip' in s3) return s3
  const bucket = testBucket()
  return {
    env: {
      BERTH_STORAGE_URL: `s3://${bucket}/archives`,
      BERTH_S3_ENDPOINT: s3.endpoint,
      BERTH_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    },
    list: () => listBucket(s3, bucket),
  }
})
