import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Model } from '../../src/domain/model.js'
import { isGone } from '../helpers/processes.js'
import { deploymentHarness } from './deployment-harness.js'

/** Following the store records which files it fetched and forgot. */
function recordingHooks() {
  const installed: string[] = []
  const forgotten: string[] = []
  return {
    installed,
    forgotten,
    hooks: {
      install: async (model: Model) => {
        installed.push(model.uploadId)
      },
      forget: async (model: Model) => {
        forgotten.push(model.uploadId)
      },
    },
  }
}

/**
 * Level-triggered following, one model at a time: what `DeploymentSync` asks of the manager on
 * every pass (the two-instance e2e tests cover the whole loop).
 */
describe('following the stored desired state', () => {
  it('deploys what the store wants, fetching the files first; then a pass is quiet', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('wanted')
      await h.store.setDesiredState(model.namespaceId, model.modelId, 'deployed')
      const [row] = await h.store.listDesiredStates()
      assert.ok(row !== undefined)
      assert.equal(h.manager.differs(model, row), true)
      const { hooks, installed } = recordingHooks()
      assert.equal(await h.manager.follow(model, row, hooks), 'deployed')
      assert.deepEqual(installed, [model.uploadId])
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      // The steady state: nothing differs, so the next passes leave the model alone.
      assert.equal(h.manager.differs(model, row), false)
    } finally {
      await h.close()
    }
  })

  it('leaves a model whose request is being carried out to the next pass', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const model = await h.model('requested')
      const request = h.manager.deploy(model)
      // A listing read before the request: it still says not deployed.
      const stale = {
        namespaceId: model.namespaceId,
        modelId: model.modelId,
        uploadId: model.uploadId,
        desired: 'not_deployed' as const,
        generation: 0,
      }
      assert.equal(await h.manager.follow(model, stale, recordingHooks().hooks), 'busy')
      await request
      assert.equal((await h.manager.waitUntilSettled(model, 5000)).status.state, 'deployed')
      // Read again in its turn, the store says deployed: the stale listing changes nothing.
      assert.equal(await h.manager.follow(model, stale, recordingHooks().hooks), 'adopted')
      assert.equal(h.manager.deploymentOf(model).status.state, 'deployed')
    } finally {
      await h.close()
    }
  })

  it('replaces a model deleted and uploaded again under the same id elsewhere', async () => {
    const h = await deploymentHarness({ mode: 'echo' })
    try {
      const first = await h.model('reuploaded')
      await h.manager.deploy(first)
      assert.equal((await h.manager.waitUntilSettled(first, 5000)).status.state, 'deployed')
      const oldPids = await h.pids()
      // Another instance deletes it and uploads it again: same model_id, another upload.
      await h.store.deleteModel(first.namespaceId, first.modelId)
      const second = { ...first, uploadId: `${first.uploadId}x` }
      await h.store.createModel(second)
      await h.store.setDesiredState(second.namespaceId, second.modelId, 'deployed')
      const [row] = await h.store.listDesiredStates()
      assert.ok(row !== undefined)
      assert.equal(h.manager.differs(first, row), true)
      const { hooks, installed, forgotten } = recordingHooks()
      assert.equal(await h.manager.follow(first, row, hooks), 'deployed')
      assert.deepEqual(forgotten, [first.uploadId])
      assert.deepEqual(installed, [second.uploadId])
      assert.equal(
        h.manager.liveModel(second.namespaceId, second.modelId)?.uploadId,
        second.uploadId,
      )
      assert.equal((await h.manager.waitUntilSettled(second, 5000)).status.state, 'deployed')
      assert.ok(oldPids.every(isGone))
    } finally {
      await h.close()
    }
  })
})
