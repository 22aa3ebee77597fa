import {
  type Context,
  context,
  createContextKey,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'

/**
 * OpenTelemetry for berth's processes, through the global API: spans are made only while
 * tracing is on (`startTracing`, in `tracing-sdk.ts`, loaded only then), so that the hot paths
 * pay nothing otherwise. The context follows async calls, and crosses processes as a W3C
 * `traceparent`.
 */

let on = false

/** Whether this process sends traces (`OTEL_EXPORTER_OTLP_ENDPOINT`, or a runner told so). */
export function tracingOn(): boolean {
  return on
}

/** Set by `startTracing` and its stop only. */
export function markTracing(state: boolean): void {
  on = state
}

/** The tracer every span of berth is made with. */
export function tracer(): Tracer {
  return trace.getTracer('berth')
}

/** The context a request's `traceparent` header names (the root context without one). */
export function contextFrom(carrier: Readonly<Record<string, unknown>>): Context {
  return propagation.extract(ROOT_CONTEXT, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => {
      const value = c[key]
      return typeof value === 'string' || Array.isArray(value) ? (value as string) : undefined
    },
  })
}

/** The `traceparent` of the span active now, to hand to another process; none when none. */
function activeTraceparent(): string | undefined {
  if (!on) return undefined
  const span = trace.getSpan(context.active())
  if (span === undefined || !span.isRecording()) return undefined
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  return carrier.traceparent
}

/** The `x-request-id`s of the requests a context works for: one request's, or a batch's. */
const REQUEST_IDS = createContextKey('berth.request_ids')

/** `parent` working for the requests `ids` (an HTTP request, or the batch a runner call runs). */
export function withRequestIds(parent: Context, ids: readonly string[]): Context {
  return parent.setValue(REQUEST_IDS, ids)
}

/** The request ids of `contexts`, in order (a batch's requests). */
export function requestIdsOf(contexts: readonly Context[]): string[] {
  return contexts.flatMap((c) => (c.getValue(REQUEST_IDS) as readonly string[] | undefined) ?? [])
}

/**
 * The trace context of the work active now, to hand to another process (a runner): its
 * `traceparent` and the request ids it works for. Nothing when not tracing.
 */
export function activeCallContext(): { traceparent?: string; requestIds?: readonly string[] } {
  const traceparent = activeTraceparent()
  if (traceparent === undefined) return {}
  const requestIds = requestIdsOf([context.active()])
  return requestIds.length === 0 ? { traceparent } : { traceparent, requestIds }
}

/** Links to the spans active in `contexts` (the other requests of a batch). */
export function linksOf(contexts: readonly Context[]): Link[] {
  return contexts.flatMap((c) => {
    const linked = trace.getSpanContext(c)
    return linked === undefined ? [] : [{ context: linked }]
  })
}

/** Marks `span` failed with `err`. */
export function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err))
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: err instanceof Error ? err.message : String(err),
  })
}

/**
 * Runs `work` with `span` active (a child of `parent`, the active context unless given), ending
 * the span when it settles; an error marks it.
 */
export async function withSpan<T>(
  span: Span,
  work: () => Promise<T>,
  parent: Context = context.active(),
): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), work)
  } catch (err) {
    failSpan(span, err)
    throw err
  } finally {
    span.end()
  }
}
