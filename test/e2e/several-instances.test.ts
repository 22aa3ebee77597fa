import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { eventually } from '../helpers/processes.js'
import {
  listBucket,
  postgresForTests,
  s3ForTests,
  testBucket,
  testSchemas,
} from '../helpers/services.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import {
  archivePart,
  createNamespace,
  formFields,
  keptFiles,
  uploadAndWait,
  uploadModel,
} from '../helpers/uploads.js'

const X = [0.5, -1, 2, 0.25, 1, 1, 1, 1, -0.5, 0.5, 3, -2, 0, 0, 0, 1]

interface SharedStores {
  /** What both instances are given: the shared database and artifact store. */
  readonly env: Record<string, string>
  /** Every object left in the artifact store (for the orphan check). */
  readonly listArchives: () => Promise<string[]>
}

/**
 * The scenario: two instances on one database and one artifact store, each with its own
 * data dir and runners. Upload and deploy through one, infer through the other; undeploy through
 * the other, 503 on both; delete, gone on both with nothing left behind.
 */
function severalInstances(label: string, shared: () => Promise<SharedStores | { skip: string }>) {
  describe(`several instances: ${label}`, () => {
    const apps: TestApp[] = []
    after(async () => {
      for (const app of apps) await app.close()
    })

    it('deploys, serves, undeploys and deletes through either instance', async (t) => {
      const stores = await shared()
      if ('skip' in stores) {
        t.skip(stores.skip)
        return
      }
      const env = { ...stores.env, BERTH_SYNC_INTERVAL_MS: '100', BERTH_SPARE_RUNNERS: '0' }
      const a = await startTestApp(env)
      apps.push(a)
      const b = await startTestApp(env)
      apps.push(b)
      const ns = await createNamespace(a, 'shared')
      // A refused upload leaves nothing in the shared store (checked at the end).
      const refused = await uploadModel(a, ns, [
        ...formFields({ name: 'junk', version: '1.0.0', model_format: 'onnx' }),
        archivePart(Buffer.from('not an archive')),
      ])
      assert.equal(refused.statusCode, 400)
      const model = mlpModel(16, 32, 4, 7)
      const answer = await uploadAndWait(
        a,
        ns,
        { name: 'mlp', model_format: 'onnx', memory_gb: '0.5' },
        { 'model.onnx': model },
      )
      assert.equal(answer.deployment_status, 'deployed')
      const url = `/v1/namespaces/${ns}/models/mlp_1_0_0`
      const body = { inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: X }] }
      const infer = (app: TestApp) =>
        app.request({ method: 'POST', url: `${url}/infer`, key: BOOTSTRAP_KEY, body })

      // B fetches the archive from the shared store, unpacks it and starts its own runner.
      await eventually(async () => (await infer(b)).statusCode === 200, 20_000)
      const want = referenceMlp(X, 1, 16, 32, 4, 7)
      for (const app of [a, b]) {
        const [y] = (await infer(app)).json().outputs
        for (let i = 0; i < want.length; i++) {
          assert.ok(Math.abs(y.data[i] - (want[i] as number)) < 1e-5, `${i}`)
        }
      }

      // Undeploy through B: 503 there at once, on A within a sync interval.
      const undeployed = await b.request({
        method: 'POST',
        url: `${url}/undeploy`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(undeployed.statusCode, 200, undeployed.body)
      assert.equal((await infer(b)).statusCode, 503)
      await eventually(async () => (await infer(a)).statusCode === 503, 10_000)
      assert.equal((await infer(a)).json().error.code, 'model_not_ready')
      // ...and back through A, on both.
      const redeploy = await a.request({
        method: 'POST',
        url: `${url}/deploy?wait=true`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(redeploy.json().deployment_status, 'deployed')
      await eventually(async () => (await infer(b)).statusCode === 200, 20_000)

      // New serving settings through B redeploy it on A too (two runner processes there).
      const settings = await b.request({
        method: 'POST',
        url: `${url}/deploy?wait=true`,
        key: BOOTSTRAP_KEY,
        body: { replicas: 2 },
      })
      assert.equal(settings.json().deployment.replicas, 2, settings.body)
      const replicasOn = async (app: TestApp) =>
        (await app.request({ method: 'GET', url, key: BOOTSTRAP_KEY })).json().model.deployment
          .replicas
      await eventually(async () => (await replicasOn(a)) === 2, 20_000)
      assert.equal((await infer(a)).statusCode, 200)

      // A model uploaded through A and never deployed: its files live only in A's data dir.
      await uploadAndWait(
        a,
        ns,
        { name: 'idle', model_format: 'onnx', deploy: 'false' },
        { 'model.onnx': model },
      )
      // Deployed through B, which fetches the archive for a deploy it takes itself (it once
      // failed for good: "File doesn't exist").
      const idleUrl = `/v1/namespaces/${ns}/models/idle_1_0_0`
      const idleDeploy = await b.request({
        method: 'POST',
        url: `${idleUrl}/deploy?wait=true`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(idleDeploy.json().deployment_status, 'deployed', idleDeploy.body)
      const idleInfer = await b.request({
        method: 'POST',
        url: `${idleUrl}/infer`,
        key: BOOTSTRAP_KEY,
        body,
      })
      assert.equal(idleInfer.statusCode, 200, idleInfer.body)

      // Delete through B: gone on both, and nothing left in either data dir or the store.
      const idle = await b.request({
        method: 'DELETE',
        url: `/v1/namespaces/${ns}/models/idle_1_0_0`,
        key: BOOTSTRAP_KEY,
      })
      assert.equal(idle.statusCode, 200, idle.body)
      const deleted = await b.request({ method: 'DELETE', url, key: BOOTSTRAP_KEY })
      assert.equal(deleted.statusCode, 200, deleted.body)
      await eventually(async () => (await infer(a)).statusCode === 404, 15_000).catch((err) => {
        // What A's sync did, to say why it did not follow.
        const lines = a
          .logs()
          .split('\n')
          .filter((l) => /sync|deployment state|not recorded|"level":"(warn|error)"/.test(l))
        throw new Error(`${String(err)}\n${lines.slice(-30).join('\n')}`)
      })
      assert.equal((await infer(b)).statusCode, 404)
      await eventually(async () => (await keptFiles(a.dataDir)).length === 0, 10_000)
      assert.deepEqual(await keptFiles(b.dataDir), [])
      assert.deepEqual(await stores.listArchives(), [])
    })
  })
}

severalInstances('one SQLite file and one archive folder', async () => {
  const dir = await tempDir('berth-shared-')
  after(() => dir.remove())
  const archives = join(dir.path, 'archives')
  return {
    env: {
      BERTH_DATABASE_URL: `sqlite://${join(dir.path, 'berth.db')}`,
      BERTH_STORAGE_URL: `file://${archives}`,
    },
    listArchives: async () => {
      const { readdir } = await import('node:fs/promises')
      const entries = await readdir(archives, { recursive: true, withFileTypes: true }).catch(
        () => [],
      )
      return entries.filter((e) => e.isFile()).map((e) => e.name)
    },
  }
})

severalInstances('PostgreSQL and S3 (radosgw)', async () => {
  const postgres = postgresForTests()
  const s3 = s3ForTests()
  if ('skip' in postgres) return postgres
  if ('skip' in s3) return s3
  const schemas = testSchemas(postgres.url)
  after(() => schemas.dropAll())
  const bucket = testBucket()
  return {
    env: {
      BERTH_DATABASE_URL: postgres.url,
      BERTH_DATABASE_SCHEMA: schemas.next(),
      BERTH_STORAGE_URL: `s3://${bucket}/archives`,
      BERTH_S3_ENDPOINT: s3.endpoint,
      BERTH_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    },
    listArchives: () => listBucket(s3, bucket),
  }
})
