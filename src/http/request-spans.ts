import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { contextFrom, tracer, withRequestIds } from '../observability/tracing.js'

/**
 * A server span per request, active for its hooks and handler (the context follows their async
 * work), a child of the trace its W3C `traceparent` header names; ended with its status. The
 * context carries the request's id too (`x-request-id`), which runners put on their spans.
 */
export function installRequestSpans(app: FastifyInstance): void {
  const spans = new WeakMap<FastifyRequest, Span>()
  app.addHook('onRequest', (request, _reply, done) => {
    const parent = contextFrom(request.headers)
    const route = request.routeOptions.url ?? 'unmatched'
    const span = tracer().startSpan(
      `${request.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          'http.route': route,
          'berth.request_id': request.id,
        },
      },
      parent,
    )
    spans.set(request, span)
    // The request id goes with the context, to the runner that runs its model.
    context.with(withRequestIds(trace.setSpan(parent, span), [request.id]), done)
  })
  app.addHook('onResponse', async (request, reply) => {
    const span = spans.get(request)
    span?.setAttribute('http.response.status_code', reply.statusCode)
    if (reply.statusCode >= 500) span?.setStatus({ code: SpanStatusCode.ERROR })
    span?.end()
  })
}
