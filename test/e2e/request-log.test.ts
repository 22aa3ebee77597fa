import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { createLogger } from '../../src/observability/logger.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace } from '../helpers/uploads.js'

interface Line {
  readonly level: string
  readonly time: string
  readonly msg: string
  readonly reqId?: string
  readonly [field: string]: unknown
}

/** The log an operator reads: one line per request, level names, ISO times, no stack for a 4xx. */
describe('the request log', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
    await createNamespace(t, 'logged')
  })
  after(() => t.close())

  const linesOf = (reqId: string): Line[] =>
    t
      .logs()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as Line)
      .filter((line) => line.reqId === reqId)

  it('says each request once, with its route, status, duration, namespace, model and code', async () => {
    const res = await t.request({
      method: 'GET',
      url: '/v1/namespaces/logged/models/ghost_1_0_0',
      key: BOOTSTRAP_KEY,
      headers: { 'x-request-id': 'req-log-404' },
    })
    assert.equal(res.statusCode, 404)
    const lines = linesOf('req-log-404')
    assert.equal(lines.length, 1, JSON.stringify(lines))
    const [line] = lines
    assert.ok(line !== undefined)
    assert.equal(line.level, 'info')
    assert.match(line.time, /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.equal(line.msg, 'request')
    assert.equal(line.method, 'GET')
    assert.equal(line.route, '/v1/namespaces/:namespace_id/models/:model_id')
    assert.equal(line.status, 404)
    assert.equal(typeof line.durationMs, 'number')
    assert.equal(line.namespace, 'logged')
    assert.equal(line.model, 'ghost_1_0_0')
    assert.equal(line.code, 'model_not_found')
    assert.ok(!JSON.stringify(lines).includes('stack'), 'a refusal logs no stack')
  })

  it('says an answered request without a code, and a probe only at debug', async () => {
    const ok = await t.request({
      method: 'GET',
      url: '/v1/namespaces/logged',
      key: BOOTSTRAP_KEY,
      headers: { 'x-request-id': 'req-log-200' },
    })
    assert.equal(ok.statusCode, 200)
    const [line, ...more] = linesOf('req-log-200')
    assert.deepEqual(more, [])
    assert.equal(line?.status, 200)
    assert.equal(line?.code, undefined)
    const probe = await t.request({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'req-log-probe' },
    })
    assert.equal(probe.statusCode, 200)
    assert.deepEqual(
      linesOf('req-log-probe').map((l) => l.level),
      ['debug'],
    )
  })

  it('writes pretty lines for people when asked', () => {
    let text = ''
    const sink = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk)
        done()
      },
    })
    createLogger('info', { pretty: true, destination: sink }).info({ route: '/x' }, 'hello')
    assert.match(text, /INFO.*hello/)
    assert.match(text, /route: "\/x"/)
    assert.throws(() => JSON.parse(text))
  })
})
