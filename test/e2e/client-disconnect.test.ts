import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { mlpModel } from '../fixtures/onnx-models.js'
import { archiveUnderWay, stagingAndUnpacking } from '../fixtures/tar-builder.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, keptFiles, uploadAndWait } from '../helpers/uploads.js'

/**
 * A client that goes away mid-request is the client's doing, not a fault of the server
 * (issue 13, report 8): it is logged at info with what was cut short, never as an error with a
 * stack.
 */
describe('clients that disconnect', () => {
  let t: TestApp
  let port: number
  let ns: string

  before(async () => {
    t = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
    ns = await createNamespace(t, 'leavers')
    await t.app.server.listen({ host: '127.0.0.1', port: 0 })
    const address = t.app.server.server.address()
    port = typeof address === 'object' && address !== null ? address.port : 0
  })
  after(() => t.close())

  const open = async (): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
    return socket
  }

  type LogLine = { level: string; msg: string; reqId?: string; err?: { stack?: string } }
  const linesOf = (reqId: string): LogLine[] =>
    t
      .logs()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogLine)
      .filter((line) => line.reqId === reqId)

  /** Waits until the request's log says the client left; resolves its lines so far. */
  const waitForLeaving = async (reqId: string): Promise<LogLine[]> => {
    for (let i = 0; i < 150; i++) {
      const lines = linesOf(reqId)
      if (lines.some((line) => line.msg === 'the client went away')) return lines
      await sleep(20)
    }
    assert.fail(`the log never said the client left: ${JSON.stringify(linesOf(reqId))}`)
  }

  /** Nothing above info, no stack, and the client's leaving said once. */
  const assertLoggedAsLeft = (reqId: string) => {
    const lines = linesOf(reqId)
    const loud = lines.filter(
      (line) => !['trace', 'debug', 'info'].includes(line.level) || line.err?.stack !== undefined,
    )
    assert.deepEqual(loud, [], 'logged above info, or with a stack')
    const left = lines.filter((line) => line.msg === 'the client went away')
    assert.equal(left.length, 1, JSON.stringify(lines))
  }

  it('mid-upload: the partial archive is removed and the log says the client left', async () => {
    const boundary = 'berthleaves'
    const socket = await open()
    socket.write(
      `POST /v1/namespaces/${ns}/models HTTP/1.1\r\n` +
        'Host: 127.0.0.1\r\n' +
        'x-request-id: leaves-mid-upload\r\n' +
        `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
        `Content-Length: ${50 * 1024 * 1024}\r\n\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.tar.gz"\r\n` +
        'Content-Type: application/gzip\r\n\r\n',
    )
    socket.write(await archiveUnderWay())
    for (let i = 0; i < 100 && !stagingAndUnpacking(await keptFiles(t.dataDir)); i++) {
      await sleep(20)
    }
    assert.ok(stagingAndUnpacking(await keptFiles(t.dataDir)), 'the upload was under way')
    socket.destroy()

    await waitForLeaving('leaves-mid-upload')
    for (let i = 0; i < 100 && (await keptFiles(t.dataDir)).length > 0; i++) await sleep(20)
    assert.deepEqual(await keptFiles(t.dataDir), [])
    assertLoggedAsLeft('leaves-mid-upload')
  })

  it('while its inference waits: the request is logged as left, and the model keeps serving', async () => {
    // A lone request waits up to a second for others to batch with: time to leave meanwhile.
    const deployed = await uploadAndWait(
      t,
      ns,
      { name: 'patient', model_format: 'onnx', memory_gb: '0.5', max_queue_delay_us: '1000000' },
      { 'model.onnx': mlpModel(4, 8, 2, 1) },
    )
    assert.equal(deployed.deployment_status, 'deployed')
    const body = JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    })
    const socket = await open()
    socket.write(
      `POST /v1/namespaces/${ns}/models/patient_1_0_0/infer HTTP/1.1\r\n` +
        'Host: 127.0.0.1\r\n' +
        'x-request-id: leaves-waiting\r\n' +
        `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
        'Content-Type: application/json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
    await sleep(200)
    socket.destroy()

    await waitForLeaving('leaves-waiting')
    // This request joins the waiting one's batch: once it is answered, so was the one that left.
    const again = await fetch(
      `http://127.0.0.1:${port}/v1/namespaces/${ns}/models/patient_1_0_0/infer`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, 'content-type': 'application/json' },
        body,
      },
    )
    assert.equal(again.status, 200)
    assertLoggedAsLeft('leaves-waiting')
  })
})
