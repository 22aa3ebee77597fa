import assert from 'node:assert/strict'
import { it } from 'node:test'
import { isToWorker } from '../../src/runtime/worker-protocol.js'

const infer = (extra: Record<string, unknown>) => ({
  type: 'infer',
  id: 1,
  slot: 0,
  inputs: [],
  outputs: null,
  traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  ...extra,
})

it("takes an infer message's request ids only as the server would take them", () => {
  assert.ok(isToWorker(infer({})))
  assert.ok(isToWorker(infer({ requestIds: ['req-1', 'req_2:a.b'] })))
  assert.ok(isToWorker(infer({ requestIds: Array.from({ length: 1024 }, (_, i) => `r${i}`) })))
  for (const bad of [
    'req-1',
    [''],
    ['has space'],
    ['x'.repeat(129)],
    [1],
    Array.from({ length: 1025 }, (_, i) => `r${i}`),
  ]) {
    assert.ok(!isToWorker(infer({ requestIds: bad })), JSON.stringify(bad).slice(0, 40))
  }
})
