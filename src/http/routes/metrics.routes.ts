import { createHash, timingSafeEqual } from 'node:crypto'
import { isIPv4 } from 'node:net'
import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { MetricsConfig } from '../../config/config.js'
import { BerthError } from '../../errors/berth-error.js'
import type { NamespaceService } from '../../namespaces/namespace-service.js'
import type { Metrics } from '../../observability/metrics.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'

/**
 * Who may read `/metrics` where it is served: anyone (a loopback API address, or a listener of
 * its own without a token), the holder of the metrics token, or no one (a non-loopback API
 * address with neither a token nor a listener of its own: every organization's namespaces,
 * models and states would be open to whoever reaches the API).
 */
export type MetricsAccess =
  | { readonly kind: 'open' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'refused' }

/**
 * Where `/metrics` is served and to whom, from the configuration: on a listener of its own when
 * BERTH_METRICS_PORT is set (`api` is then `undefined`: not on the API port); with the token
 * wherever it is served when BERTH_METRICS_TOKEN is set; otherwise open on a loopback API address
 * (only this machine reaches it, and `npm start` needs no setup) and refused on any other.
 */
export function metricsAccessOf(
  metrics: MetricsConfig,
  apiHost: string,
): { readonly api: MetricsAccess | undefined; readonly own: MetricsAccess | undefined } {
  const guarded: MetricsAccess =
    metrics.token === undefined ? { kind: 'open' } : { kind: 'token', token: metrics.token }
  if (metrics.listen !== undefined) return { api: undefined, own: guarded }
  if (guarded.kind === 'token' || isLoopback(apiHost)) return { api: guarded, own: undefined }
  return { api: { kind: 'refused' }, own: undefined }
}

/** `localhost`, `127.0.0.0/8` and `::1` (bracketed or IPv4-mapped alike). */
export function isLoopback(host: string): boolean {
  const bare = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  const v4 = bare.startsWith('::ffff:') ? bare.slice('::ffff:'.length) : bare
  if (isIPv4(v4)) return v4.startsWith('127.')
  return bare === 'localhost' || bare === '::1'
}

export interface MetricsRoutesOptions {
  readonly metrics: Metrics
  readonly access: MetricsAccess
}

const tags = ['Operations']

/** The 200 answer: text, while errors keep the JSON envelope (a route-wide `produces` would not). */
const PROMETHEUS_TEXT = {
  description: 'Prometheus exposition text',
  content: { 'text/plain': { schema: z.string() } },
}

/**
 * `/metrics`: Prometheus text of every series, as `access` allows: 401 `metrics_token_invalid`
 * without the token it needs, 403 `metrics_not_exposed` where it is not served.
 */
export const metricsRoutes: FastifyPluginAsyncZod<MetricsRoutesOptions> = async (
  app,
  { metrics, access },
) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: 'Prometheus metrics, every name prefixed berth_',
        description:
          'Needs `Authorization: Bearer` with BERTH_METRICS_TOKEN when it is set; served without one only on a loopback address or a listener of its own (docs/configuration.md).',
        response: { 200: PROMETHEUS_TEXT, ...errorResponses(401, 403) },
      },
    },
    async (request, reply) => {
      checkAccess(access, request.headers.authorization)
      return sendText(reply, await metrics.render())
    },
  )
}

export interface OrgMetricsRoutesOptions {
  readonly metrics: Metrics
  readonly namespaces: NamespaceService
}

/**
 * `/v1/metrics`: the caller's own organization's per-model series, labelled by namespace name.
 * Behind the authentication hook.
 */
export const orgMetricsRoutes: FastifyPluginAsyncZod<OrgMetricsRoutesOptions> = async (
  app,
  { metrics, namespaces },
) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags,
        summary: "Prometheus metrics of the key's organization",
        description:
          "Per model (inference, deployment states, restarts, loads) for the organization's own namespaces only, labelled by namespace name; no server-wide series.",
        security: BEARER_AUTH,
        response: { 200: PROMETHEUS_TEXT, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const own = await namespaces.list(principalOf(request))
      const names = new Map(own.map((namespace) => [namespace.id, namespace.name]))
      return sendText(reply, await metrics.renderNamespaces(names))
    },
  )
}

function sendText(
  reply: FastifyReply,
  { contentType, body }: { contentType: string; body: string },
) {
  reply.type(contentType)
  // Plain text, not JSON: bypass the JSON serializer.
  return reply.serializer((payload: unknown) => String(payload)).send(body)
}

function checkAccess(access: MetricsAccess, authorization: string | undefined): void {
  if (access.kind === 'open') return
  if (access.kind === 'refused') {
    throw new BerthError(
      'metrics_not_exposed',
      '/metrics is not served on a non-loopback API address: set BERTH_METRICS_TOKEN, or BERTH_METRICS_PORT for a listener of its own',
    )
  }
  const given = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1]?.trim()
  if (given === undefined || !sameSecret(given, access.token)) {
    throw new BerthError(
      'metrics_token_invalid',
      '/metrics needs Authorization: Bearer with the metrics token',
    )
  }
}

/** Compares digests, so the time taken says nothing of the token (its length included). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (value: string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(given), digest(expected))
}
