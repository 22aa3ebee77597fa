import type { FastifyRequest } from 'fastify'
import { BerthError } from '../errors/berth-error.js'

/**
 * The namespace (id or name) a route without a namespace in its path acts in: the `X-Namespace`
 * header, as Mixpeek's API takes it. Throws `namespace_header_missing` (400) without one;
 * `routes` says which routes need it, in the message.
 */
export function namespaceHeaderOf(request: FastifyRequest, routes: string): string {
  const value = request.headers['x-namespace']
  if (typeof value !== 'string' || value.trim() === '') {
    throw new BerthError(
      'namespace_header_missing',
      `the X-Namespace header (a namespace id or name) is required on ${routes}`,
    )
  }
  return value.trim()
}
