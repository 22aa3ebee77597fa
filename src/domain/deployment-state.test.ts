import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { isBerthError } from '../errors/berth-error.js'
import {
  canTransition,
  type DeploymentState,
  mixpeekStatus,
  NEVER_DEPLOYED,
  transition,
} from './deployment-state.js'

const STATES: DeploymentState[] = [
  'not_deployed',
  'pending',
  'loading',
  'deployed',
  'unloading',
  'failed',
]

describe('deployment states', () => {
  it('walks the life of a deployment with a reason and a time at each step', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s))
    let status = NEVER_DEPLOYED('2026-01-01T00:00:00.000Z')
    status = transition(status, 'pending', 'insufficient_cpu', t(1))
    status = transition(status, 'loading', 'loading_model', t(2))
    status = transition(status, 'deployed', 'ready', t(3))
    status = transition(status, 'loading', 'restarting', t(4))
    status = transition(status, 'failed', 'runner_crashed', t(5))
    status = transition(status, 'pending', 'deploy_requested', t(6))
    assert.deepEqual(status, {
      state: 'pending',
      reason: 'deploy_requested',
      since: '2026-01-01T00:00:06.000Z',
    })
  })

  it('refuses every move outside the table', () => {
    const legal = new Set([
      'not_deployed>pending',
      'pending>pending',
      'pending>loading',
      'pending>not_deployed',
      'pending>failed',
      'loading>loading',
      'loading>deployed',
      'loading>failed',
      'loading>unloading',
      'loading>pending',
      'deployed>deployed',
      'deployed>unloading',
      'deployed>loading',
      'deployed>failed',
      'unloading>not_deployed',
      'unloading>failed',
      'failed>pending',
      'failed>not_deployed',
    ])
    for (const from of STATES) {
      for (const to of STATES) {
        assert.equal(canTransition(from, to), legal.has(`${from}>${to}`), `${from} > ${to}`)
      }
    }
    assert.throws(
      () => transition(NEVER_DEPLOYED('2026-01-01T00:00:00.000Z'), 'deployed', 'ready', new Date()),
      (err) => isBerthError(err, 'deployment_transition_invalid'),
    )
  })

  it("shows Mixpeek's four statuses", () => {
    assert.deepEqual(STATES.map(mixpeekStatus), [
      'not_deployed',
      'pending',
      'pending',
      'deployed',
      'pending',
      'failed',
    ])
  })
})
