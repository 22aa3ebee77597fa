import assert from 'node:assert/strict'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { setImmediate as tick } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import { pino } from 'pino'
import { ConnectionGuard } from './connection-guard.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** POSTs `body` on a connection of its own, closed after the answer; resolves the answer's text. */
function post(port: number, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method: 'POST', path: '/echo', agent: false },
      (res: IncomingMessage) => {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk
        })
        res.on('end', () => resolve(text))
      },
    )
    req.setHeader('content-type', 'text/plain')
    req.setHeader('connection', 'close')
    req.on('error', reject)
    req.end(body)
  })
}

describe('the connection guard', () => {
  it('lets go of a request as soon as its body is read, not at its timer’s next check', async () => {
    // The body bounds are checked every second: a request answered in between must not stay in
    // memory (with its reply and buffers) until then. At thousands of requests a second, every
    // request would outlive the young generation and cost the collector to copy it.
    const timeouts = { headersMs: 10_000, keepAliveMs: 5_000, bodyMs: 60_000, bodyIdleMs: 30_000 }
    const guard = new ConnectionGuard(timeouts, pino({ level: 'silent' }))
    const app = Fastify({ ...guard.serverOptions() })
    guard.install(app)
    let seen: WeakRef<object> | undefined
    app.addHook('onRequest', async (request) => {
      seen = new WeakRef(request.raw)
    })
    app.addContentTypeParser('text/plain', { parseAs: 'string' }, (_request, body, done) =>
      done(null, body),
    )
    app.post('/echo', async (request) => String(request.body))
    await app.listen({ host: '127.0.0.1', port: 0 })
    try {
      const { port } = app.server.address() as AddressInfo
      assert.equal(await post(port, 'hello'), 'hello')
      // Well within the guard's one-second check: collected now, or held by its timer.
      let collected = false
      for (let i = 0; i < 20 && !collected; i++) {
        await tick()
        gc()
        collected = seen?.deref() === undefined
        if (!collected) await new Promise((resolve) => setTimeout(resolve, 10))
      }
      assert.ok(seen !== undefined)
      assert.ok(collected, 'the request was still held after it was answered')
    } finally {
      await app.close()
    }
  })
})
