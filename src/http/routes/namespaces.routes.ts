import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Namespace } from '../../domain/namespace.js'
import { BerthError } from '../../errors/berth-error.js'
import type { NamespaceService } from '../../namespaces/namespace-service.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  CreateNamespaceBodySchema,
  ListNamespacesBodySchema,
  ListNamespacesQuerySchema,
  ListNamespacesResponseSchema,
  NamespaceDeleteSchema,
  NamespaceListSchema,
  NamespaceParamsSchema,
  NamespaceSchema,
  PatchNamespaceBodySchema,
  UpdateNamespaceBodySchema,
} from '../schemas/namespace.schemas.js'

export interface NamespaceRoutesOptions {
  readonly namespaces: NamespaceService
}

const tags = ['Namespaces']

/** `/v1/namespaces`: create, list, get, delete. Registered behind the authentication hook. */
export const namespaceRoutes: FastifyPluginAsyncZod<NamespaceRoutesOptions> = async (
  app,
  { namespaces },
) => {
  app.post(
    '/namespaces',
    {
      schema: {
        tags,
        summary: 'Create a namespace',
        security: BEARER_AUTH,
        body: CreateNamespaceBodySchema,
        response: { 200: NamespaceSchema, ...errorResponses(401, 409, 422) },
      },
    },
    async (request) => {
      const { namespace_name, description } = request.body
      const namespace = await namespaces.create(principalOf(request), {
        name: namespace_name,
        description,
      })
      return namespaceView(namespace)
    },
  )

  app.get(
    '/namespaces',
    {
      schema: {
        tags,
        summary: 'List namespaces',
        security: BEARER_AUTH,
        response: { 200: NamespaceListSchema, ...errorResponses(401) },
      },
    },
    async (request) => {
      const list = await namespaces.list(principalOf(request))
      return { success: true, namespaces: list.map(namespaceView), total: list.length }
    },
  )

  app.post(
    '/namespaces/list',
    {
      schema: {
        tags,
        summary: 'List namespaces with filters, search, sort and pages (Mixpeek)',
        security: BEARER_AUTH,
        querystring: ListNamespacesQuerySchema,
        body: ListNamespacesBodySchema,
        response: { 200: ListNamespacesResponseSchema, ...errorResponses(400, 401, 422) },
      },
    },
    async (request) => {
      const { limit, cursor } = request.query
      const offset = cursor === undefined ? (request.query.offset ?? 0) : offsetOf(cursor)
      const body = request.body ?? { case_sensitive: false }
      const page = await namespaces.query(principalOf(request), {
        filters: body.filters,
        sort: body.sort,
        search: body.search,
        caseSensitive: body.case_sensitive,
        limit,
        offset,
      })
      const total = page.total
      const hasMore = offset + page.results.length < total
      const link = (at: number) => `/v1/namespaces/list?limit=${limit}&offset=${at}`
      return {
        results: page.results.map(namespaceView),
        pagination: {
          total,
          page: Math.floor(offset / limit) + 1,
          page_size: limit,
          total_pages: Math.ceil(total / limit),
          next_page: hasMore ? link(offset + limit) : null,
          previous_page: offset > 0 ? link(Math.max(0, offset - limit)) : null,
          next_cursor: hasMore ? cursorOf(offset + limit) : null,
          has_more: hasMore,
          limit,
          skip: offset,
        },
        total_count: total,
        stats: null,
      }
    },
  )

  for (const method of ['PATCH', 'PUT'] as const) {
    app.route({
      method,
      url: '/namespaces/:namespace',
      schema: {
        tags,
        summary:
          method === 'PATCH'
            ? 'Rename a namespace or change its description'
            : 'Rename a namespace (Mixpeek update)',
        security: BEARER_AUTH,
        params: NamespaceParamsSchema,
        body: method === 'PATCH' ? PatchNamespaceBodySchema : UpdateNamespaceBodySchema,
        response: { 200: NamespaceSchema, ...errorResponses(401, 404, 409, 422) },
      },
      handler: async (request) => {
        const body = request.body as { namespace_name?: string | null; description?: string | null }
        const namespace = await namespaces.update(principalOf(request), request.params.namespace, {
          // null is "not given", as Mixpeek's clients send every field of the model.
          ...(body.namespace_name == null ? {} : { name: body.namespace_name }),
          ...(body.description == null ? {} : { description: body.description }),
        })
        return namespaceView(namespace)
      },
    })
  }

  app.get(
    '/namespaces/:namespace',
    {
      schema: {
        tags,
        summary: 'Get a namespace by id or name',
        security: BEARER_AUTH,
        params: NamespaceParamsSchema,
        response: { 200: NamespaceSchema, ...errorResponses(401, 404, 422) },
      },
    },
    async (request) =>
      namespaceView(await namespaces.get(principalOf(request), request.params.namespace)),
  )

  app.delete(
    '/namespaces/:namespace',
    {
      schema: {
        tags,
        summary: 'Delete a namespace',
        security: BEARER_AUTH,
        params: NamespaceParamsSchema,
        response: { 200: NamespaceDeleteSchema, ...errorResponses(401, 404, 409, 422) },
      },
    },
    async (request) => {
      const deleted = await namespaces.delete(principalOf(request), request.params.namespace)
      return {
        success: true,
        namespace_id: deleted.id,
        message: `namespace "${deleted.name}" deleted`,
      }
    },
  )
}

function namespaceView(namespace: Namespace) {
  return {
    namespace_id: namespace.id,
    namespace_name: namespace.name,
    description: namespace.description,
    created_at: namespace.createdAt,
    updated_at: namespace.updatedAt,
  }
}

/** An opaque cursor for the page that starts at `offset`. */
function cursorOf(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64url')
}

/** The offset a cursor stands for. Throws `namespace_query_invalid` for one berth did not make. */
function offsetOf(cursor: string): number {
  let offset: unknown
  try {
    offset = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')).offset
  } catch {
    offset = undefined
  }
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
    throw new BerthError('namespace_query_invalid', 'the cursor is not one berth answered')
  }
  return offset as number
}
