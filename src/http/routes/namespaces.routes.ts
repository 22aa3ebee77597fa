import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Namespace } from '../../domain/namespace.js'
import type { NamespaceService } from '../../namespaces/namespace-service.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  CreateNamespaceBodySchema,
  NamespaceDeleteSchema,
  NamespaceListSchema,
  NamespaceParamsSchema,
  NamespaceSchema,
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
