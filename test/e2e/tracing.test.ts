import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { eventually } from '../helpers/processes.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

interface OtlpSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly attributes?: ReadonlyArray<{
    readonly key: string
    readonly value: { readonly arrayValue?: { readonly values: { stringValue?: string }[] } }
  }>
}
interface Received extends OtlpSpan {
  readonly service: string
}

/** A real OTLP/HTTP receiver (JSON), on 127.0.0.1: every span it was sent, with its service. */
function otlpReceiver(): { server: Server; spans: Received[] } {
  const spans: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: { stringValue?: string } }[] }
          scopeSpans: { spans: OtlpSpan[] }[]
        }[]
      }
      for (const rs of body.resourceSpans) {
        const service =
          rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? ''
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  return { server, spans }
}

describe('OpenTelemetry traces (OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  const receiver = otlpReceiver()
  let t: TestApp
  before(async () => {
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve))
    const { port } = receiver.server.address() as AddressInfo
    t = await startTestApp({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` })
  })
  after(async () => {
    await t.close()
    await new Promise((resolve) => receiver.server.close(resolve))
  })

  it("follows an inference from the client's traceparent through the server into the runner", async () => {
    const ns = await createNamespace(t, 'traced')
    const up = await uploadAndWait(
      t,
      ns,
      { name: 'traced', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': mlpModel(4, 8, 3, 7) },
    )
    assert.equal(up.deployment_status, 'deployed', JSON.stringify(up))
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const callerSpan = '00f067aa0ba902b7'
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/traced_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      headers: { traceparent: `00-${traceId}-${callerSpan}-01`, 'x-request-id': 'req-traced-1' },
      body: { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
    })
    assert.equal(res.statusCode, 200, res.body)

    const inTrace = () => receiver.spans.filter((s) => s.traceId === traceId)
    const named = (name: string) => inTrace().find((s) => s.name.startsWith(name))
    await eventually(() => named('model.run') !== undefined && named('POST') !== undefined, 15_000)
    const server = named('POST /v1/namespaces/:namespace_id/models/:model_id/infer')
    const queue = named('inference.queue')
    const call = named('runner.infer')
    const run = named('model.run onnx')
    assert.ok(server && queue && call && run, JSON.stringify(inTrace()))
    assert.equal(server.parentSpanId, callerSpan, "the server's span is the caller's child")
    assert.equal(queue.parentSpanId, server.spanId)
    assert.equal(call.parentSpanId, server.spanId)
    assert.equal(run.parentSpanId, call.spanId, "the runner's span is the call's child")
    assert.deepEqual(
      [server.service, call.service, run.service],
      ['berth', 'berth', 'berth-runner'],
      'the model ran in the runner process, which sent its own span',
    )
    // The request's id went to the runner with the trace context.
    const ids = run.attributes?.find((a) => a.key === 'berth.request_ids')?.value.arrayValue
    assert.deepEqual(
      ids?.values.map((v) => v.stringValue),
      ['req-traced-1'],
      JSON.stringify(run.attributes),
    )
    // The model's load is traced too (a trace of its own: deploys run in the background).
    await eventually(() => receiver.spans.some((s) => s.name === 'model.load'), 15_000)
  })
})
