import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client'

/** Every metric berth exports starts with this. */
export const METRIC_PREFIX = 'berth_'

/**
 * berth's Prometheus metrics, in a registry of its own (never prom-client's global one), so
 * several apps in one process (tests) do not collide.
 */
export class Metrics {
  readonly registry = new Registry()
  readonly httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>
  readonly uploadBytes: Counter

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX })
    this.httpRequestDuration = new Histogram({
      name: `${METRIC_PREFIX}http_request_duration_seconds`,
      help: 'HTTP request latency by method, route pattern and status code',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [this.registry],
    })
    this.uploadBytes = new Counter({
      name: `${METRIC_PREFIX}upload_bytes_total`,
      help: 'Bytes of model archives received (accepted or not)',
      registers: [this.registry],
    })
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}
