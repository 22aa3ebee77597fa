import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  type RawConnection as Connection,
  listenLocally,
  RawConnection,
} from '../helpers/raw-http.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

/**
 * What the HTTP server refuses before any route sees the request (Node's parser, Fastify's
 * router, the body limit) is answered in the same envelope as every other error, with a stable
 * code and `Connection: close`, and the connection is closed (issue 13, report 5). Each case is
 * sent as raw bytes over a real connection: no HTTP client would send them.
 */
describe('the HTTP server’s own refusals', () => {
  let t: TestApp
  let port: number
  before(async () => {
    t = await startTestApp()
    port = await listenLocally(t)
  })
  after(() => t.close())

  /** Checks the answer on `connection`: the envelope with `code`, then the connection closed. */
  async function assertRefused(
    connection: Connection,
    status: number,
    type: string,
    code: string,
  ): Promise<Record<string, unknown>> {
    const res = await connection.response()
    assert.equal(res.status, status, connection.received())
    assert.equal(res.headers.connection, 'close')
    assert.match(res.headers['content-type'] ?? '', /^application\/json/)
    const body = JSON.parse(res.body)
    assert.deepEqual(Object.keys(body).sort(), ['error', 'status', 'success'])
    assert.equal(body.success, false)
    assert.equal(body.status, status)
    assert.equal(body.error.type, type)
    assert.equal(body.error.code, code)
    assert.equal(typeof body.error.message, 'string')
    for (const key of Object.keys(body.error)) {
      assert.ok(['type', 'message', 'code', 'details'].includes(key), key)
    }
    assert.doesNotMatch(res.body, /\bat .+:\d+:\d+/, 'no stack trace')
    assert.ok(await connection.closed(2000), 'the server closes the connection')
    return body.error
  }

  async function send(head: string, body = ''): Promise<Connection> {
    const connection = await RawConnection.open(port)
    connection.write(head + body)
    return connection
  }

  it('431 request_headers_too_large: a head over 16 KiB', async () => {
    const c = await send(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    const error = await assertRefused(c, 431, 'PayloadTooLargeError', 'request_headers_too_large')
    assert.deepEqual(error.details, { max_bytes: 16 * 1024 })
  })

  it('414 request_uri_too_long: a path segment longer than any name', async () => {
    const name = 't'.repeat(10_000)
    const c = await send(
      `GET /v1/namespaces/ns/models/m/tensors/${name} HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n\r\n`,
    )
    await assertRefused(c, 414, 'PayloadTooLargeError', 'request_uri_too_long')
  })

  it('400 request_malformed: a path that does not percent-decode', async () => {
    const c = await send(
      `GET /v1/namespaces/%E0%A4%A/models HTTP/1.1\r\nHost: x\r\n` +
        `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n\r\n`,
    )
    const error = await assertRefused(c, 400, 'BadRequestError', 'request_malformed')
    assert.deepEqual(error.details, { reason: 'FST_ERR_BAD_URL' })
  })

  const unreadable: ReadonlyArray<readonly [string, string, string]> = [
    ['a bad request line', 'GET /healthz HTTP/1.1 and more\r\nHost: x\r\n\r\n', 'HPE_'],
    ['a space in the path', 'GET /a b HTTP/1.1\r\nHost: x\r\n\r\n', 'HPE_'],
    [
      'a Content-Length that is not a number',
      'POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}',
      'HPE_INVALID_CONTENT_LENGTH',
    ],
    [
      'both Content-Length and Transfer-Encoding',
      'POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      'HPE_',
    ],
  ]
  for (const [what, bytes, reason] of unreadable) {
    it(`400 request_malformed: ${what}`, async () => {
      const error = await assertRefused(
        await send(bytes),
        400,
        'BadRequestError',
        'request_malformed',
      )
      const details = error.details as { reason?: string } | undefined
      assert.ok(details?.reason?.startsWith(reason), JSON.stringify(error))
    })
  }

  it('400 request_malformed: a Content-Length larger than the body, which then ends', async () => {
    const c = await send(
      `POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n',
      '{"name":',
    )
    c.end()
    const error = await assertRefused(c, 400, 'BadRequestError', 'request_malformed')
    assert.deepEqual(error.details, { reason: 'HPE_INVALID_EOF_STATE' })
  })

  it('413 request_body_too_large: a length over the limit, answered before the body', async () => {
    const c = await send(
      `POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${8 * 1024 ** 2}\r\n\r\n`,
      '{"name":"',
    )
    // The client keeps sending; the answer does not wait for the body, nor does the close.
    const trickling = c.trickle('a'.repeat(64 * 1024), 1024, 20)
    await assertRefused(c, 413, 'PayloadTooLargeError', 'request_body_too_large')
    await trickling
  })

  it('keeps answering ordinary requests on other connections', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`)
    assert.equal(res.status, 200)
  })
})
