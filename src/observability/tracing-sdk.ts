import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { markTracing } from './tracing.js'

/**
 * Sends this process's spans as OTLP/HTTP (JSON) to `url`, as `serviceName`. Resolves the stop,
 * which sends what is left. One per process. Imported only when tracing is on: the SDK and the
 * exporter are not loaded otherwise.
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
  markTracing(true)
  return async () => {
    markTracing(false)
    await provider.shutdown()
    trace.disable()
    propagation.disable()
    context.disable()
  }
}
