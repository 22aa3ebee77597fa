import assert from 'node:assert/strict'
import { readdir, realpath, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import Database from 'better-sqlite3'
import type { LightMyRequestResponse } from 'fastify'
import { mlpModel, unloadableModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadModel } from '../helpers/uploads.js'

/**
 * No answer shows where the server keeps its files (issue 13, report 8): not a load error's
 * message, not an archive's URL. The data directory is a temp dir; its path, resolved or not,
 * must appear in no body.
 */
describe('server paths in answers', () => {
  let t: TestApp
  let ns: string
  let dataDirs: string[]
  const answers: LightMyRequestResponse[] = []

  before(async () => {
    t = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
    ns = await createNamespace(t, 'no-paths')
    dataDirs = [...new Set([t.dataDir, await realpath(t.dataDir)])]
  })
  after(() => t.close())

  const get = async (url: string) => {
    const res = await t.request({ method: 'GET', url, key: BOOTSTRAP_KEY })
    answers.push(res)
    return res
  }
  const assertNoPath = (res: LightMyRequestResponse, what: string) => {
    for (const dir of dataDirs) {
      assert.ok(!res.body.includes(dir), `${what} shows the data directory: ${res.body}`)
    }
    // Nor any absolute path of the machine's temp area, where the data dir lives.
    assert.doesNotMatch(res.body, /\/tmp\//, what)
  }

  it('a model ONNX Runtime cannot load is refused at upload without the path it was loaded from', async () => {
    const res = await uploadModel(t, ns, [
      ...formFields({ name: 'unloadable', version: '1.0.0', model_format: 'onnx' }),
      archivePart(await tarGzOf({ 'model.onnx': unloadableModel() })),
    ])
    assert.equal(res.statusCode, 400, res.body)
    assert.equal(res.json().error.code, 'model_load_failed')
    // The reason stays: the operator the model names.
    assert.match(res.json().error.message, /NoSuchOperatorAnywhere/)
    assertNoPath(res, 'the upload refusal')
  })

  it('a deployment whose files fail to load says so without their path; archive URLs show none', async () => {
    const upload = await uploadModel(t, ns, [
      ...formFields({ name: 'damaged', version: '1.0.0', model_format: 'onnx', deploy: 'false' }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(upload.statusCode, 200, upload.body)
    assertNoPath(upload, 'the upload answer')
    assert.match(upload.json().model_archive_url, /^berth:\/\/archives\/ns_[0-9a-f]+\/upl_/)

    // The installed file is damaged on disk after the upload (a full disk, an operator's slip):
    // ONNX Runtime's error names the file by its absolute path.
    const installed = await installedFile(t.dataDir, 'model.onnx')
    await writeFile(installed, 'not protobuf at all')
    const deploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/damaged_1_0_0/deploy?wait=true`,
      key: BOOTSTRAP_KEY,
    })
    answers.push(deploy)
    assert.equal(deploy.statusCode, 200, deploy.body)
    assert.equal(deploy.json().deployment.state, 'failed')
    assert.equal(deploy.json().deployment.reason, 'model_load_failed')
    assertNoPath(deploy, 'the deploy answer')
    // Still says which file failed, relative to the model.
    assert.match(deploy.json().deployment.message, /model\.onnx/)

    const detail = await get(`/v1/namespaces/${ns}/models/damaged_1_0_0`)
    assert.equal(detail.json().model.deployment.reason, 'model_load_failed')
    assert.equal(detail.json().model.model_archive_url, upload.json().model_archive_url)
    for (const res of [
      detail,
      await get(`/v1/namespaces/${ns}/models`),
      await get(`/v2/models/damaged`),
    ]) {
      assertNoPath(res, res.raw.req.url ?? '')
    }
  })

  it('an organization model shows its archive by key, not by path', async () => {
    const created = await t.request({
      method: 'POST',
      url: '/v1/models/uploads',
      key: BOOTSTRAP_KEY,
      body: { name: 'org-paths', version: '1.0.0', model_format: 'onnx' },
    })
    assert.equal(created.statusCode, 200, created.body)
    assertNoPath(created, 'the presign answer')
    const url = new URL(created.json().presigned_url)
    const put = await t.app.server.inject({
      method: 'PUT',
      url: `${url.pathname}${url.search}`,
      headers: { 'content-type': 'application/gzip' },
      payload: await tarGzOf({ 'model.onnx': mlpModel() }),
    })
    assert.equal(put.statusCode, 200, put.body)
    const confirm = await t.request({
      method: 'POST',
      url: `/v1/models/uploads/${created.json().upload_id}/confirm`,
      key: BOOTSTRAP_KEY,
      body: {},
    })
    assert.equal(confirm.statusCode, 200, confirm.body)
    assert.match(confirm.json().s3_archive_url, /^berth:\/\/archives\//)
    assertNoPath(confirm, 'the confirm answer')
    assertNoPath(await get('/v1/models/org-paths_1_0_0'), 'the org model')
  })
})

describe('archive URLs recorded by an earlier berth', () => {
  it('are rewritten from their key when the schema is migrated', async () => {
    const t = await startTestApp()
    let restarted: TestApp | undefined
    try {
      const ns = await createNamespace(t, 'old-urls')
      const upload = await uploadModel(t, ns, [
        ...formFields({ name: 'old', version: '1.0.0', model_format: 'onnx', deploy: 'false' }),
        archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
      ])
      assert.equal(upload.statusCode, 200, upload.body)
      await t.stop()
      // As berth recorded it before: the server's path, and the migration not yet run.
      const sqlite = new Database(join(t.dataDir, 'berth.db'))
      const { archive_key: key } = sqlite.prepare('select archive_key from models').get() as {
        archive_key: string
      }
      const old = `file://${join(t.dataDir, 'archives', key)}`
      sqlite.prepare('update models set archive_url = ?').run(old)
      // Undone with every migration after it, as a berth of then never ran them.
      sqlite.prepare("delete from berth_migration where name >= '0008-archive-urls'").run()
      sqlite.prepare('alter table models drop column load_policy').run()
      sqlite.prepare('alter table models drop column idle_timeout_s').run()
      sqlite.prepare('drop table inference_hourly').run()
      sqlite.prepare('alter table models drop column node_selector').run()
      sqlite.close()

      restarted = await startTestApp({ BERTH_DATA_DIR: t.dataDir })
      const detail = await restarted.request({
        method: 'GET',
        url: `/v1/namespaces/${ns}/models/old_1_0_0`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(detail.statusCode, 200, detail.body)
      assert.equal(detail.json().model.model_archive_url, `berth://archives/${key}`)
    } finally {
      await restarted?.close()
      await t.close()
    }
  })
})

/** The one installed file called `name` under the data dir's models/. */
async function installedFile(dataDir: string, name: string): Promise<string> {
  const root = join(dataDir, 'models')
  const entries = await readdir(root, { recursive: true, withFileTypes: true })
  const found = entries.filter((e) => e.isFile() && e.name === name)
  assert.equal(found.length, 1, `installed ${name}: ${found.map((e) => e.parentPath)}`)
  const [entry] = found
  const path = join(entry?.parentPath ?? '', name)
  await stat(path)
  return path
}
