import type { FastifyRequest } from 'fastify'
import { BerthError } from '../errors/berth-error.js'

/**
 * The namespace of a route that names none in its path (`/v2`, `/v1/inference`, analytics):
 * the `X-Namespace` header, a namespace id or name. Throws `namespace_header_missing`.
 */
export function namespaceOf(request: FastifyRequest): string {
  const value = request.headers['x-namespace']
  if (typeof value !== 'string' || value.trim() === '') {
    throw new BerthError(
      'namespace_header_missing',
      `the X-Namespace header (a namespace id or name) is required on ${request.routeOptions.url ?? request.url}`,
    )
  }
  return value.trim()
}
