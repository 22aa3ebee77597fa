import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { CRASH_POINTS, type CrashPoint } from '../../src/domain/crash-points.js'
import type { Model } from '../../src/domain/model.js'
import { createMetadataStore } from '../../src/metadata/create-metadata-store.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { type ServeProcess, startBerthServe } from '../helpers/berth-process.js'
import { multipartBody } from '../helpers/multipart.js'
import { eventually, isGone } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'
import { archivePart, formFields } from '../helpers/uploads.js'

// The crash harness: for each named point of the upload, deploy, undeploy and delete paths, a
// real `berth serve` is killed there (SIGKILL, through BERTH_TEST_CRASH_AT: no cleanup runs), then
// started again on the same data directory. After the restart nothing may be orphaned (temp files,
// unpacked folders, stored archives, runner processes), lost (a request recorded before the crash
// is carried out) or half-recorded (a model is either whole and servable, or absent and uploadable
// again).

const KEY = 'sk_crash_test_key_0123456789abcdef'
const MODEL_ID = 'mlp_1_0_0'

/** What each crash point interrupts, and what must hold once the server is back. */
const SCENARIOS: Record<
  CrashPoint,
  {
    /** Run against the server that crashes; the last request is the one killed. */
    readonly act: (s: Session) => Promise<unknown>
    /** The model after the restart: deployed and serving, recorded but not deployed, or gone. */
    readonly after: 'deployed' | 'not_deployed' | 'absent'
  }
> = {
  upload_staged: { act: (s) => s.upload(true), after: 'absent' },
  upload_validated: { act: (s) => s.upload(true), after: 'absent' },
  upload_stored: { act: (s) => s.upload(true), after: 'absent' },
  upload_installed: { act: (s) => s.upload(true), after: 'absent' },
  // Recorded as wanted deployed: the restart deploys it, though no runner had started.
  upload_recorded: { act: (s) => s.upload(true), after: 'deployed' },
  deploy_recorded: {
    act: async (s) => {
      await s.upload(false)
      await s.post(`models/${MODEL_ID}/deploy`)
    },
    after: 'deployed',
  },
  deploy_loaded: { act: (s) => s.upload(true), after: 'deployed' },
  undeploy_recorded: {
    act: async (s) => {
      await s.upload(true, '?wait=true')
      await s.post(`models/${MODEL_ID}/undeploy`)
    },
    after: 'not_deployed',
  },
  delete_recorded: {
    act: async (s) => {
      await s.upload(true, '?wait=true')
      await s.request('DELETE', `models/${MODEL_ID}`)
    },
    after: 'absent',
  },
}

/** Requests to one server, in one namespace. */
class Session {
  readonly server: ServeProcess
  readonly namespace: string

  constructor(server: ServeProcess, namespace: string) {
    this.server = server
    this.namespace = namespace
  }

  static async open(server: ServeProcess, namespaceName: string): Promise<Session> {
    const res = await call(server, 'POST', '/v1/namespaces', {
      body: JSON.stringify({ namespace_name: namespaceName }),
      headers: { 'content-type': 'application/json' },
    })
    const text = await res.text()
    assert.equal(res.status, 200, text)
    return new Session(server, (JSON.parse(text) as { namespace_id: string }).namespace_id)
  }

  async upload(deploy: boolean, query = ''): Promise<Response> {
    const { payload, headers } = multipartBody([
      ...formFields({ name: 'mlp', version: '1.0.0', model_format: 'onnx', memory_gb: '0.5' }),
      // Eager even without a deploy: what a later deploy asks is kept loaded after a restart.
      ...formFields({ deploy: String(deploy), load_policy: 'eager' }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel(4, 8, 2, 1) })),
    ])
    return this.request('POST', `models${query}`, { body: payload, headers })
  }

  post(path: string): Promise<Response> {
    return this.request('POST', path)
  }

  request(
    method: string,
    path: string,
    init: { body?: Buffer | string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    return call(this.server, method, `/v1/namespaces/${this.namespace}/${path}`, init)
  }

  async infer(): Promise<Response> {
    return this.request('POST', `models/${MODEL_ID}/infer`, {
      body: JSON.stringify({
        inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
      }),
      headers: { 'content-type': 'application/json' },
    })
  }
}

function call(
  server: ServeProcess,
  method: string,
  path: string,
  init: { body?: Buffer | string; headers?: Record<string, string> } = {},
): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...init.headers },
    ...(init.body === undefined ? {} : { body: init.body }),
  })
}

async function list(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []))
    .filter((e) => e.isFile() || e.isDirectory())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort()
}

/** The models the data directory's database records, read after the server stopped. */
async function recordedModels(dataDir: string, namespaceId: string): Promise<Model[]> {
  const store = await createMetadataStore({ driver: 'sqlite', path: join(dataDir, 'berth.db') })
  try {
    return await store.listModels(namespaceId)
  } finally {
    await store.close()
  }
}

describe('crash consistency: kill -9 at each point of the upload, deploy and delete paths', () => {
  for (const point of CRASH_POINTS) {
    it(`after a crash at ${point}, nothing is orphaned, lost or half-recorded`, async () => {
      const scenario = SCENARIOS[point]
      const dir = await tempDir()
      const env = {
        BERTH_DATA_DIR: dir.path,
        BERTH_BOOTSTRAP_API_KEY: KEY,
        BERTH_SPARE_RUNNERS: '0',
      }
      let first: ServeProcess | undefined
      let second: ServeProcess | undefined
      try {
        first = await startBerthServe({ ...env, BERTH_TEST_CRASH_AT: point })
        const exited = once(first.child, 'exit')
        const session = await Session.open(first, 'crash')
        // The request killed midway fails; one answered before the crash (a deploy that loads
        // after answering) is fine.
        await scenario.act(session).catch(() => undefined)
        const [code, signal] = await exited
        assert.equal(signal, 'SIGKILL', `the server crashed at ${point} (exit ${code})`)
        const runDir = join(dir.path, 'run')
        const orphanedRunners = (await readdir(runDir).catch(() => [])).map(Number)

        // Restarted on the same directory: one instance, so no grace for unrecorded archives.
        second = await startBerthServe({ ...env, BERTH_ORPHAN_GRACE_MS: '0' })
        const again = new Session(second, session.namespace)
        // Ended at the restart (a killed process lingers until its new parent, init, reaps it).
        await eventually(() => orphanedRunners.every(isGone), 5000).catch(() => {
          assert.fail('the runners of the crashed server were ended at the restart')
        })
        assert.deepEqual(await list(join(dir.path, 'tmp')), [], 'tmp/ holds nothing')

        if (scenario.after === 'absent') {
          assert.equal((await again.request('GET', `models/${MODEL_ID}`)).status, 404)
          // Never half-recorded: the same upload is taken again, whole.
          const retry = await again.upload(true, '?wait=true')
          assert.equal(retry.status, 200, await retry.text())
        }
        if (scenario.after === 'not_deployed') {
          const res = await again.request('GET', `models/${MODEL_ID}`)
          const { model } = (await res.json()) as { model: { deployment: { state: string } } }
          assert.equal(model.deployment.state, 'not_deployed')
          assert.equal((await again.infer()).status, 503)
        } else {
          // Deployed: what was recorded as wanted is carried out after the restart.
          await eventually(async () => (await again.infer()).status === 200, 30_000)
        }

        const runners = (await readdir(runDir).catch(() => [])).map(Number)
        assert.equal(await second.stop(), 0)
        second = undefined
        assert.ok(runners.every(isGone), 'a clean stop ends every runner')

        // Everything on disk is owned by a record, and every record's files are there.
        const models = await recordedModels(dir.path, session.namespace)
        const wantArchives = models.map((m) => m.archive.key).sort()
        assert.deepEqual(await list(join(dir.path, 'archives', session.namespace)), [
          ...wantArchives.map((key) => key.split('/').slice(1).join('/')),
        ])
        const installed = (await list(join(dir.path, 'models', session.namespace))).filter(
          (path) => !path.includes('/'),
        )
        assert.deepEqual(installed, models.map((m) => m.uploadId).sort())
        assert.deepEqual(await list(join(dir.path, 'tmp')), [])
        assert.equal(models.length, 1, 'one model, whole')
        if (scenario.after !== 'not_deployed') {
          assert.equal(models[0]?.deployment.desired, 'deployed')
        }
      } finally {
        await first?.stop('SIGKILL')
        await second?.stop('SIGKILL')
        await dir.remove()
      }
    })
  }
})
