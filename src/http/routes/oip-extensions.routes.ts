import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { Model } from '../../domain/model.js'
import type { InferenceService } from '../../inference/inference-service.js'
import { platformOf, tritonModelConfig } from '../../inference/model-config.js'
import type { ModelCatalog } from '../../registry/model-catalog.js'
import type { ModelRepository } from '../../registry/model-repository.js'
import { principalOf } from '../authentication.js'
import { namespaceOf } from '../namespace-header.js'
import { BEARER_AUTH, errorResponses, NamespaceHeaderSchema } from '../schemas/common.schemas.js'
import { OipModelParamsSchema, OipVersionParamsSchema } from '../schemas/inference.schemas.js'
import {
  ModelConfigSchema,
  ModelStatsResponseSchema,
  RepositoryIndexRequestSchema,
  RepositoryIndexSchema,
  RepositoryLoadRequestSchema,
  RepositoryModelsSchema,
  RepositoryUnloadRequestSchema,
} from '../schemas/oip.schemas.js'

export interface OipExtensionsOptions {
  readonly catalog: ModelCatalog
  readonly inference: InferenceService
  readonly repository: ModelRepository
}

/**
 * Triton's extensions of the Open Inference Protocol, beside `oipRoutes` under `/v2` (with the
 * namespace from `X-Namespace`): model configuration (`…/config`), statistics (`…/stats`,
 * `/models/stats`) and the model repository (`/repository/index`, `…/load`, `…/unload`).
 */
export const oipExtensionRoutes: FastifyPluginAsyncZod<OipExtensionsOptions> = async (
  app,
  { catalog, inference, repository },
) => {
  const tags = ['Open Inference Protocol']
  // tritonclient posts its repository bodies (`{}`, `{"ready": true}`) with no Content-Type:
  // those are read as JSON here, as Triton reads them.
  const json = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    if (body.toString().trim() === '') done(null, undefined)
    else json(request, body.toString(), done)
  })
  const headers = NamespaceHeaderSchema

  const statsOf = (models: readonly Model[]) => ({
    model_stats: models.map((m) => ({
      name: m.name,
      version: m.version,
      ...inference.statisticsOf(m),
    })),
  })

  app.get(
    '/models/stats',
    {
      schema: {
        tags,
        summary: 'Statistics of every model version of the namespace (X-Namespace)',
        security: BEARER_AUTH,
        headers,
        response: { 200: ModelStatsResponseSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const { models } = await catalog.list(principalOf(request), namespaceOf(request))
      return statsOf(models)
    },
  )

  for (const [path, params] of [
    ['/models/:name', OipModelParamsSchema],
    ['/models/:name/versions/:version', OipVersionParamsSchema],
  ] as const) {
    const paramsOf = (request: FastifyRequest) =>
      request.params as { readonly name: string; readonly version?: string }
    app.get(
      `${path}/config`,
      {
        schema: {
          tags,
          summary: "Triton's model configuration: batching, instances, inputs and outputs",
          security: BEARER_AUTH,
          params,
          headers,
          response: { 200: ModelConfigSchema, ...errorResponses(400, 401, 403, 404, 422) },
        },
      },
      async (request) => {
        const { name, version } = paramsOf(request)
        const model = await catalog.resolve(
          principalOf(request),
          namespaceOf(request),
          name,
          version,
        )
        return tritonModelConfig(model, {
          signature: inference.signatureOf(model),
          platform: platformOf(model),
          maxBatchSize: inference.maxBatchSizeOf(model),
        })
      },
    )
    app.get(
      `${path}/stats`,
      {
        schema: {
          tags,
          summary: 'Inference statistics: of one version, or of every version of a name',
          security: BEARER_AUTH,
          params,
          headers,
          response: { 200: ModelStatsResponseSchema, ...errorResponses(400, 401, 403, 404, 422) },
        },
      },
      async (request) => {
        const { name, version } = paramsOf(request)
        const principal = principalOf(request)
        const namespace = namespaceOf(request)
        if (version !== undefined) {
          return statsOf([await catalog.resolve(principal, namespace, name, version)])
        }
        return statsOf(await repository.modelsNamed(principal, namespace, name))
      },
    )
  }

  app.post(
    '/repository/index',
    {
      schema: {
        tags,
        summary: "The namespace's model versions and their state (READY, LOADING, UNAVAILABLE…)",
        security: BEARER_AUTH,
        headers,
        body: RepositoryIndexRequestSchema,
        response: { 200: RepositoryIndexSchema, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) =>
      repository.index(principalOf(request), namespaceOf(request), request.body?.ready === true),
  )

  app.post(
    '/repository/models/:name/load',
    {
      schema: {
        tags,
        summary: 'Deploy the model and wait until it is READY',
        description:
          'A model_id, or a name (its highest version). Waits as a deploy with wait=true does; 503 model_not_ready when it is still on its way (the load goes on), 400 model_load_failed when it failed.',
        security: BEARER_AUTH,
        params: OipModelParamsSchema,
        headers,
        body: RepositoryLoadRequestSchema,
        response: {
          200: RepositoryModelsSchema,
          ...errorResponses(400, 401, 403, 404, 422, 503),
        },
      },
    },
    async (request) => ({
      models: [
        await repository.load(principalOf(request), namespaceOf(request), request.params.name),
      ],
    }),
  )

  app.post(
    '/repository/models/:name/unload',
    {
      schema: {
        tags,
        summary: 'Undeploy the model (a model_id, or every served version of a name)',
        security: BEARER_AUTH,
        params: OipModelParamsSchema,
        headers,
        body: RepositoryUnloadRequestSchema,
        response: { 200: RepositoryModelsSchema, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) => ({
      models: await repository.unload(
        principalOf(request),
        namespaceOf(request),
        request.params.name,
      ),
    }),
  )
}
