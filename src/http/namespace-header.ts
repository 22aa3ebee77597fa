import type { FastifyRequest } from 'fastify'
import { BerthError } from '../errors/berth-error.js'

/**
 * The namespace of a route that names none in its path (`/v2`, `/v1/inference`, analytics):
 * the `X-Namespace` header, a namespace id or name. Throws `namespace_header_missing`.
 */
export function namespaceOf(request: FastifyRequest): string {
  const value = optionalNamespaceOf(request)
  if (value === undefined) {
    throw new BerthError(
      'namespace_header_missing',
      `the X-Namespace header (a namespace id or name) is required on ${request.routeOptions.url ?? request.url}`,
    )
  }
  return value
}

/** The `X-Namespace` header where a route also finds the namespace another way. */
export function optionalNamespaceOf(request: FastifyRequest): string | undefined {
  const value = request.headers['x-namespace']
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined
}
