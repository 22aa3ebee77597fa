import assert from 'node:assert/strict'
import { it } from 'node:test'
import { isSettled as clientSettled, type Deployment } from '@berth/client'
import {
  DEPLOYMENT_REASONS,
  DEPLOYMENT_STATES,
  DESIRED_STATES,
  isSettled as serverSettled,
} from '../../src/domain/deployment-state.js'

it("@berth/client's idea of a settled deployment is the server's, for every state, wish and reason", () => {
  // The client cannot import the server's code: its copy is checked against it here.
  let checked = 0
  for (const state of DEPLOYMENT_STATES) {
    for (const desired of DESIRED_STATES) {
      for (const reason of DEPLOYMENT_REASONS) {
        const since = '2026-12-07T00:00:00.000Z'
        const server = serverSettled({
          desired,
          status: { state, reason, since },
          message: null,
          deployedAt: null,
        })
        const client = clientSettled({ state, desired, reason, since, message: null } as Deployment)
        assert.equal(client, server, `${state} / ${desired} / ${reason}`)
        checked += 1
      }
    }
  }
  assert.ok(checked > 100)
})
