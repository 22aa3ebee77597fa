import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { it } from 'node:test'
import { type BerthClient, type Deployment, WaitTimeout } from '@berth/client'
import { watch } from '../../src/cli/client-commands.js'

const at = (state: Deployment['state'], reason: string): Deployment => ({
  state,
  desired: 'deployed',
  reason,
  since: '2026-12-07T00:00:00.000Z',
  message: null,
})

/** A client whose deployment goes through `states`, then settles or runs out of time. */
function clientGoing(states: readonly Deployment[], end: 'settle' | 'time out'): BerthClient {
  return {
    waitForDeployment: async (
      namespace: string,
      modelId: string,
      options: { onChange?: (d: Deployment) => void },
    ) => {
      for (const d of states) options.onChange?.(d)
      const last = states.at(-1) as Deployment
      if (end === 'time out') throw new WaitTimeout(namespace, modelId, last)
      return last
    },
  } as unknown as BerthClient
}

it('--wait prints each change, and says when the deployment failed or did not settle', async () => {
  let printed = ''
  const progress = new Writable({
    write(chunk, _encoding, done) {
      printed += String(chunk)
      done()
    },
  })
  const failed = await watch(
    clientGoing(
      [
        at('loading', 'loading_model'),
        at('loading', 'loading_model'),
        at('failed', 'model_load_failed'),
      ],
      'settle',
    ),
    'ns',
    'm_1_0_0',
    at('pending', 'deploy_requested'),
    progress,
  )
  assert.equal(failed.failed, true)
  assert.equal(failed.deployment.state, 'failed')
  // Each change once: the repeated state is not said twice.
  assert.equal(
    printed,
    'pending (deploy_requested)\nloading (loading_model)\nfailed (model_load_failed)\n',
  )
  const deployed = await watch(
    clientGoing([at('deployed', 'ready')], 'settle'),
    'ns',
    'm',
    undefined,
    undefined,
  )
  assert.equal(deployed.failed, false)
  printed = ''
  const stuck = await watch(
    clientGoing([at('loading', 'loading_model')], 'time out'),
    'ns',
    'm',
    undefined,
    progress,
  )
  assert.equal(stuck.failed, true)
  assert.equal(stuck.deployment.state, 'loading')
  assert.equal(printed, 'loading (loading_model)\nstill loading: not waiting longer\n')
})
