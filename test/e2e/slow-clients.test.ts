import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { archiveUnderWay, stagingAndUnpacking, tarGzOf } from '../fixtures/tar-builder.js'
import { multipartBody } from '../helpers/multipart.js'
import { listenLocally, RawConnection, type RawResponse } from '../helpers/raw-http.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, formFields, keptFiles } from '../helpers/uploads.js'

// Short bounds, so that each case takes well under a second of waiting.
const HEADERS_MS = 300
const KEEP_ALIVE_MS = 300
const BODY_MS = 600
const BODY_IDLE_MS = 400
/** What a bound may overrun by: its check interval plus a busy machine's scheduling. */
const SLACK_MS = 1500
/** Node keeps an idle connection this much longer than its keep-alive timeout. */
const NODE_KEEP_ALIVE_GRACE_MS = 1000

/**
 * Slow or stalling clients hold nothing for long (issue 13, report 4): every wait on a client is
 * bounded (head, idle keep-alive, body), an upload is bounded by its progress only, and an answer
 * sent before the body's end closes the connection instead of draining a trickled body.
 */
describe('slow clients', () => {
  let t: TestApp
  let port: number
  let ns: string
  before(async () => {
    t = await startTestApp({
      BERTH_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
      BERTH_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_MS),
      BERTH_BODY_TIMEOUT_MS: String(BODY_MS),
      BERTH_BODY_IDLE_TIMEOUT_MS: String(BODY_IDLE_MS),
    })
    ns = await createNamespace(t, 'slow')
    port = await listenLocally(t)
  })
  after(() => t.close())

  /** Reads the answer's envelope; the connection must be closed after it. */
  async function refusal(c: RawConnection, status: number, code: string): Promise<RawResponse> {
    const res = await c.response(BODY_MS + SLACK_MS)
    assert.equal(res.status, status, c.received())
    assert.equal(JSON.parse(res.body).error.code, code)
    assert.equal(res.headers.connection, 'close')
    assert.ok(await c.closed(SLACK_MS), 'closed after the answer')
    return res
  }

  it('closes a connection whose headers trickle past the headers timeout (slow loris)', async () => {
    const c = await RawConnection.open(port)
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    void c.trickle('X-Slow: a\r\n'.repeat(200), 11, 50)
    assert.ok(await c.closed(HEADERS_MS + SLACK_MS), 'closed by the headers timeout')
    const res = await c.response()
    assert.equal(res.status, 408)
    assert.equal(JSON.parse(res.body).error.code, 'request_timeout')
    assert.deepEqual(JSON.parse(res.body).error.details, { phase: 'headers' })
  })

  it('closes an idle kept-alive connection after the keep-alive timeout', async () => {
    const c = await RawConnection.open(port)
    c.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    const res = await c.response()
    assert.equal(res.status, 200)
    assert.equal(res.headers.connection, 'keep-alive')
    assert.ok(
      await c.closed(KEEP_ALIVE_MS + NODE_KEEP_ALIVE_GRACE_MS + SLACK_MS),
      'closed once idle',
    )
  })

  /** The head and the first part of a multipart upload whose archive is `length` bytes. */
  function uploadHead(key: string, archiveBytes: number, url = `/v1/namespaces/${ns}/models`) {
    const boundary = 'berthslow'
    const partHead =
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.tar.gz"\r\n` +
      'Content-Type: application/gzip\r\n\r\n'
    return (
      `POST ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
      `Content-Length: ${partHead.length + archiveBytes + 100}\r\n\r\n${partHead}`
    )
  }

  it('cuts off an upload whose body stalls, and removes its temp file', async () => {
    // Made first: the body's idle bound runs from the head on.
    const underWay = await archiveUnderWay()
    const c = await RawConnection.open(port)
    c.write(uploadHead(BOOTSTRAP_KEY, 50 * 1024 ** 2))
    c.write(underWay)
    for (let i = 0; i < 200 && !stagingAndUnpacking(await keptFiles(t.dataDir)); i++) {
      await sleep(10)
    }
    assert.ok(stagingAndUnpacking(await keptFiles(t.dataDir)), 'the upload was under way')
    // Nothing more is sent.
    const res = await refusal(c, 408, 'request_timeout')
    assert.deepEqual(JSON.parse(res.body).error.details, {
      phase: 'body',
      timeout_ms: BODY_IDLE_MS,
    })
    assert.match(res.headers['x-request-id'] ?? '', /^req_/)
    assert.ok((c.closedAfterMs ?? 0) >= BODY_IDLE_MS, 'not before the idle timeout')
    for (let i = 0; i < 100 && (await keptFiles(t.dataDir)).length > 0; i++) await sleep(10)
    assert.deepEqual(await keptFiles(t.dataDir), [])
  })

  it('accepts an upload that keeps flowing for longer than every body timeout', async () => {
    const archive = await tarGzOf({
      'model.safetensors': safetensorsBytes({ w: f32([64, 4]) }),
    })
    const { payload, headers } = multipartBody([
      ...formFields({ name: 'trickled', version: '1.0.0', model_format: 'safetensors' }),
      ...formFields({ deploy: 'false' }),
      { name: 'file', filename: 'model.tar.gz', content: archive },
    ])
    const c = await RawConnection.open(port)
    c.write(
      `POST /v1/namespaces/${ns}/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        `Content-Type: ${headers['content-type']}\r\nContent-Length: ${payload.length}\r\n\r\n`,
    )
    const pieces = 20
    const everyMs = 100
    const started = performance.now()
    await c.trickle(payload, Math.ceil(payload.length / pieces), everyMs)
    const res = await c.response(10_000)
    assert.ok(performance.now() - started > BODY_MS + BODY_IDLE_MS, 'the body took its time')
    assert.equal(res.status, 200, res.body)
    assert.equal(JSON.parse(res.body).model_id, 'trickled_1_0_0')
    c.destroy()
  })

  it('cuts off a JSON body that trickles for longer than the body timeout', async () => {
    const c = await RawConnection.open(port)
    c.write(
      `POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"namespace_name":"',
    )
    void c.trickle('a'.repeat(100_000), 10, BODY_IDLE_MS / 4)
    await refusal(c, 408, 'request_timeout')
    assert.ok((c.closedAfterMs ?? 0) >= BODY_MS, 'not before the body timeout')
  })

  it('cuts off a JSON body that stalls', async () => {
    const c = await RawConnection.open(port)
    c.write(
      `POST /v1/namespaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"namespace_name":',
    )
    await refusal(c, 408, 'request_timeout')
  })

  /** Sends `head`, then keeps trickling; the answer must come and the connection close at once. */
  async function refusedWhileTrickling(head: string, status: number, code: string) {
    const c = await RawConnection.open(port)
    c.write(head)
    // Steady progress, never stalling: only the early answer may end this connection.
    const trickling = c.trickle(randomBytes(400 * 1024), 1024, 20)
    const res = await c.response()
    assert.equal(res.status, status, c.received())
    assert.equal(JSON.parse(res.body).error.code, code)
    assert.equal(res.headers.connection, 'close')
    assert.ok(await c.closed(1000), 'closed promptly, not drained')
    await trickling
  }

  it('closes the connection after a 401 to a trickled upload instead of reading on', async () => {
    await refusedWhileTrickling(
      uploadHead('sk_not_a_key_0123456789abcdef', 10 * 1024 ** 2),
      401,
      'api_key_invalid',
    )
  })

  it('closes the connection after a 403 to a trickled archive PUT instead of reading on', async () => {
    await refusedWhileTrickling(
      'PUT /v1/models/uploads/upl_x/archive?expires=9999999999&signature=forged HTTP/1.1\r\n' +
        `Host: x\r\nContent-Type: application/gzip\r\nContent-Length: ${10 * 1024 ** 2}\r\n\r\n`,
      403,
      'upload_url_invalid',
    )
  })

  it('closes the connection after a 413 answered from the length alone', async () => {
    await refusedWhileTrickling(
      uploadHead(BOOTSTRAP_KEY, t.config.limits.maxArchiveBytes + 2 * 1024 ** 2),
      413,
      'archive_too_large',
    )
  })

  it('logs none of these clients as a server fault', () => {
    const faults = t
      .logs()
      .split('\n')
      .filter((line) => /"level":"(error|fatal)"/.test(line))
    assert.deepEqual(faults, [])
  })
})
