import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type Tracer,
  trace,
} from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'

/**
 * OpenTelemetry for berth's processes: spans are made through the global API everywhere
 * (`tracer()`), and go nowhere until `startTracing` installs an exporter. The context follows
 * async calls (AsyncLocalStorage), and crosses processes as a W3C `traceparent`.
 */

/** The tracer every span of berth is made with: a no-op one until tracing starts. */
export function tracer(): Tracer {
  return trace.getTracer('berth')
}

/**
 * Sends this process's spans as OTLP/HTTP (JSON) to `url`, as `serviceName`. Resolves the
 * shutdown, which sends what is left. One per process.
 */
export function startTracing(options: {
  readonly url: string
  readonly serviceName: string
  /** How long spans wait to be sent together (ms). */
  readonly delayMs?: number
}): () => Promise<void> {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': options.serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }), {
        scheduledDelayMillis: options.delayMs ?? 1000,
      }),
    ],
  })
  trace.setGlobalTracerProvider(provider)
  return async () => {
    await provider.shutdown()
    trace.disable()
    propagation.disable()
    context.disable()
  }
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
export function activeTraceparent(): string | undefined {
  const span = trace.getSpan(context.active())
  if (span === undefined || !span.isRecording()) return undefined
  const carrier: Record<string, string> = {}
  propagation.inject(context.active(), carrier)
  return carrier.traceparent
}

/** Runs `work` with `span` active, ending the span when it settles (an error marks it). */
export async function withSpan<T>(span: Span, parent: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(parent, span), work)
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err))
    span.setStatus({ code: 2, message: err instanceof Error ? err.message : String(err) })
    throw err
  } finally {
    span.end()
  }
}
