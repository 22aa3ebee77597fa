import { finished } from 'node:stream'
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  preParsingAsyncHookHandler,
} from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Model } from '../../domain/model.js'
import { BerthError } from '../../errors/berth-error.js'
import type { InferenceService } from '../../inference/inference-service.js'
import { platformOf } from '../../inference/model-config.js'
import type { DeploymentService } from '../../registry/deployment-service.js'
import type { ModelCatalog } from '../../registry/model-catalog.js'
import { principalOf } from '../authentication.js'
import { namespaceOf } from '../namespace-header.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  InferRequestSchema,
  InferResponseSchema,
  ModelMetadataSchema,
  ModelReadySchema,
  OipModelParamsSchema,
  OipVersionParamsSchema,
  ServerMetadataSchema,
} from '../schemas/inference.schemas.js'
import { ModelParamsSchema } from '../schemas/model.schemas.js'
import { rawBodyValidatorCompiler } from '../validation.js'

export interface InferenceRoutesOptions {
  readonly catalog: ModelCatalog
  readonly inference: InferenceService
  readonly maxRequestBytes: number
  readonly version: string
}

/**
 * The protocol extensions berth implements, as Triton names them: binary tensors (here), model
 * configuration, statistics and the model repository (oip-extensions.routes.ts).
 */
export const OIP_EXTENSIONS = [
  'binary_tensor_data',
  'model_configuration',
  'statistics',
  'model_repository',
] as const

/** The binary tensor extension's header: length of the JSON part of the body. */
const HEADER_LENGTH = 'inference-header-content-length'

const inferErrors = errorResponses(400, 401, 403, 404, 413, 422, 429, 503, 504)

/** The request body, raw: JSON or JSON + binary tensors, decoded by the OIP codec. */
export function acceptRawBodies(app: FastifyInstance, maxRequestBytes: number): void {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: maxRequestBytes },
    (_request, body, done) => done(null, body),
  )
}

/**
 * Holds the memory the body will take against the server's budget before it is read (by its
 * declared length; the largest accepted when it declares none), and gives it back once the
 * answer is sent or the connection is gone. Refuses at once, unread: JSON past its bound (413),
 * and any body while the budget is spent (429 `decode_budget_full`, with `Retry-After`).
 */
export function reserveBody(
  inference: InferenceService,
  maxRequestBytes: number,
): preParsingAsyncHookHandler {
  return async (request, reply, payload) => {
    const declared = Number(request.headers['content-length'])
    const known = Number.isSafeInteger(declared) && declared >= 0
    const bytes = known ? Math.min(declared, maxRequestBytes) : maxRequestBytes
    const header = request.headers[HEADER_LENGTH]
    const headerLength = header === undefined ? Number.NaN : Number(header)
    let jsonBytes: number | undefined
    if (header === undefined) jsonBytes = known ? bytes : undefined
    else if (Number.isSafeInteger(headerLength))
      jsonBytes = Math.max(0, Math.min(headerLength, bytes))
    const release = inference.reserveBody({ bytes, jsonBytes })
    // `finished`, not a 'close' listener: a client may have left while the key was checked, and
    // a response already closed emits no 'close' again (the bytes would stay reserved forever).
    finished(reply.raw, () => release())
    return payload
  }
}

/**
 * `reserveBody` for a route whose body is all JSON, whatever its headers say: the whole declared
 * length (`maxJsonBytes` when it declares none, the body then cut there) is held as JSON.
 */
export function reserveJsonBody(
  inference: InferenceService,
  maxJsonBytes: number,
): preParsingAsyncHookHandler {
  return async (request, reply, payload) => {
    const declared = Number(request.headers['content-length'])
    const known = Number.isSafeInteger(declared) && declared >= 0
    const bytes = known ? declared : maxJsonBytes
    const release = inference.reserveBody({ bytes, jsonBytes: bytes })
    finished(reply.raw, () => release())
    return payload
  }
}

async function answerInfer(
  request: FastifyRequest,
  reply: FastifyReply,
  inference: InferenceService,
  model: Model,
): Promise<FastifyReply> {
  const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
  const raw = request.headers[HEADER_LENGTH]
  let headerLength: number | undefined
  if (raw !== undefined) {
    headerLength = Number(raw)
    if (!Number.isSafeInteger(headerLength)) {
      throw new BerthError('infer_request_invalid', `${HEADER_LENGTH} must be an integer`)
    }
  }
  const encoded = await inference.inferOip(model, body, headerLength)
  if (encoded.headerLength !== undefined) reply.header(HEADER_LENGTH, encoded.headerLength)
  return reply.type(encoded.contentType).send(encoded.body)
}

/** `POST /v1/namespaces/{ns}/models/{model_id}/infer`: the model's `endpoint`. */
export const inferenceRoutes: FastifyPluginAsyncZod<InferenceRoutesOptions> = async (
  app,
  { catalog, inference, maxRequestBytes },
) => {
  acceptRawBodies(app, maxRequestBytes)
  app.post(
    '/namespaces/:namespace_id/models/:model_id/infer',
    {
      preParsing: reserveBody(inference, maxRequestBytes),
      schema: {
        tags: ['Inference'],
        summary: 'Run the model (Open Inference Protocol request)',
        description:
          'JSON tensors, or the binary tensor extension (Inference-Header-Content-Length). Inputs are checked against the model signature first.',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        body: InferRequestSchema,
        response: { 200: InferResponseSchema, ...inferErrors },
      },
      validatorCompiler: rawBodyValidatorCompiler,
    },
    async (request, reply) => {
      const { namespace_id, model_id } = request.params
      const model = await catalog.get(principalOf(request), namespace_id, model_id)
      return answerInfer(request, reply, inference, model)
    },
  )
}

/**
 * `/v2/health/*`: open, like `/healthz`. Ready once every eagerly deployed model has settled
 * (503 `{ready: false}` while one is still loading, as KServe's readiness answers).
 */
export const oipHealthRoutes: FastifyPluginAsyncZod<{
  readonly deployments: Pick<DeploymentService, 'ready'>
}> = async (app, options) => {
  const tags = ['Open Inference Protocol']
  app.get(
    '/health/live',
    {
      schema: {
        tags,
        summary: 'Server liveness',
        response: { 200: z.object({ live: z.boolean() }) },
      },
    },
    async () => ({ live: true }),
  )
  app.get(
    '/health/ready',
    {
      schema: {
        tags,
        summary: 'Server readiness: every eagerly deployed model has loaded (or failed)',
        response: {
          200: z.object({ ready: z.boolean() }),
          503: z.object({ ready: z.boolean() }),
        },
      },
    },
    async (_request, reply) => {
      const ready = options.deployments.ready()
      return reply.code(ready ? 200 : 503).send({ ready })
    },
  )
}

/**
 * The Open Inference Protocol (KServe v2) data plane. The namespace comes from
 * `X-Namespace`; `{name}` is a model name (its highest deployed version) or a `model_id`.
 */
export const oipRoutes: FastifyPluginAsyncZod<InferenceRoutesOptions> = async (app, options) => {
  const { catalog, inference, maxRequestBytes, version } = options
  const tags = ['Open Inference Protocol']
  acceptRawBodies(app, maxRequestBytes)

  const modelFor = (request: FastifyRequest, name: string, modelVersion?: string) =>
    catalog.resolve(principalOf(request), namespaceOf(request), name, modelVersion)

  app.get(
    '',
    {
      schema: {
        tags,
        summary: 'Server metadata',
        security: BEARER_AUTH,
        response: { 200: ServerMetadataSchema, ...errorResponses(401) },
      },
    },
    async () => ({ name: 'berth', version, extensions: [...OIP_EXTENSIONS] }),
  )

  const metadata = async (model: Model) => {
    const signature = inference.signatureOf(model)
    const shapeOf = (dims: readonly (number | string)[]) =>
      dims.map((d) => (typeof d === 'number' ? d : -1))
    return {
      name: model.name,
      versions: await catalog.versionsOf(model),
      platform: platformOf(model),
      model_id: model.modelId,
      inputs: (signature?.inputs ?? []).map((t) => ({ ...t, shape: shapeOf(t.shape) })),
      outputs: (signature?.outputs ?? []).map((t) => ({ ...t, shape: shapeOf(t.shape) })),
    }
  }
  const ready = (model: Model) => {
    // Throws model_not_ready (503) with the state and reason when it is not.
    inference.assertReady(model)
    return { name: model.name, ready: true }
  }
  const headers = z.object({ 'x-namespace': z.string().optional() })

  for (const [path, params] of [
    ['/models/:name', OipModelParamsSchema],
    ['/models/:name/versions/:version', OipVersionParamsSchema],
  ] as const) {
    // The params were validated against `params`: a name, and for the second path a version.
    const resolve = (request: FastifyRequest) => {
      const p = request.params as { name: string; version?: string }
      return modelFor(request, p.name, p.version)
    }
    app.get(
      path,
      {
        schema: {
          tags,
          summary: 'Model metadata: inputs and outputs, -1 for dynamic dims',
          security: BEARER_AUTH,
          params,
          headers,
          response: { 200: ModelMetadataSchema, ...errorResponses(400, 401, 403, 404, 422) },
        },
      },
      async (request) => metadata(await resolve(request)),
    )
    app.get(
      `${path}/ready`,
      {
        schema: {
          tags,
          summary: 'Whether the model answers requests (503 model_not_ready when not)',
          security: BEARER_AUTH,
          params,
          headers,
          response: { 200: ModelReadySchema, ...errorResponses(400, 401, 403, 404, 422, 503) },
        },
      },
      async (request) => ready(await resolve(request)),
    )
    app.post(
      `${path}/infer`,
      {
        preParsing: reserveBody(inference, maxRequestBytes),
        schema: {
          tags,
          summary: 'Run the model',
          security: BEARER_AUTH,
          params,
          headers,
          body: InferRequestSchema,
          response: { 200: InferResponseSchema, ...inferErrors },
        },
        validatorCompiler: rawBodyValidatorCompiler,
      },
      async (request, reply) => answerInfer(request, reply, inference, await resolve(request)),
    )
  }
}
