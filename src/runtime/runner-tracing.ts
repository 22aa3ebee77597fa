import type { Attributes } from '@opentelemetry/api'
import { contextFrom, tracer, withSpan } from '../observability/tracing.js'
import { startTracing } from '../observability/tracing-sdk.js'

/** A runner's tracing: its spans, children of berth's calls, sent to `url` as `berth-runner`. */
export function runnerTracing(url: string) {
  const stop = startTracing({ url, serviceName: 'berth-runner', delayMs: 200 })
  return {
    /**
     * Runs `work` as a span named `name` with `attributes`, a child of the call whose
     * `traceparent` is given.
     */
    inSpan<T>(
      traceparent: string,
      name: string,
      work: () => Promise<T>,
      attributes: Attributes = {},
    ): Promise<T> {
      const parent = contextFrom({ traceparent })
      return withSpan(tracer().startSpan(name, { attributes }, parent), work, parent)
    },
    /** Sends what is left. */
    stop,
  }
}
