import { randomUUID } from 'node:crypto'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify'
import {
  createJsonSchemaTransform,
  createJsonSchemaTransformObject,
  serializerCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod'
import type { AccountService } from '../accounts/account-service.js'
import type { HttpTimeouts } from '../config/config.js'
import { REQUEST_ID_PATTERN } from '../domain/request-id.js'
import { BerthError } from '../errors/berth-error.js'
import type { InferenceService } from '../inference/inference-service.js'
import type { NamespaceService } from '../namespaces/namespace-service.js'
import type { Metrics } from '../observability/metrics.js'
import type { ModelHistory } from '../observability/model-history.js'
import { tracingOn } from '../observability/tracing.js'
import type { DeploymentService } from '../registry/deployment-service.js'
import type { InferenceAnalytics } from '../registry/inference-analytics.js'
import type { ModelCatalog } from '../registry/model-catalog.js'
import type { ModelRepository } from '../registry/model-repository.js'
import { OpenAiEmbeddings } from '../registry/openai-embeddings.js'
import type { OrgModelRegistry } from '../registry/org-model-registry.js'
import { RawInference } from '../registry/raw-inference.js'
import type { TensorInventory } from '../registry/tensor-inventory.js'
import type { UploadPipeline } from '../registry/upload-pipeline.js'
import { authenticate } from './authentication.js'
import { ConnectionGuard } from './connection-guard.js'
import { answerFrameworkError, installErrorHandler, refusalOf } from './error-handler.js'
import { tidyComponentSchemas, withOperationExamples } from './openapi-components.js'
import { installRequestSpans } from './request-spans.js'
import { analyticsRoutes } from './routes/analytics.routes.js'
import { consoleRoutes } from './routes/console.routes.js'
import { inferenceRoutes, oipHealthRoutes, oipRoutes } from './routes/inference.routes.js'
import { type MetricsAccess, metricsRoutes, orgMetricsRoutes } from './routes/metrics.routes.js'
import { modelHistoryRoutes } from './routes/model-history.routes.js'
import { modelRoutes } from './routes/models.routes.js'
import { namespaceRoutes } from './routes/namespaces.routes.js'
import { nodeRoutes } from './routes/node.routes.js'
import { oipExtensionRoutes } from './routes/oip-extensions.routes.js'
import { openAiRoutes } from './routes/openai.routes.js'
import { operationsRoutes } from './routes/operations.routes.js'
import { orgModelRoutes, orgUploadRoutes } from './routes/org-models.routes.js'
import { rawInferenceRoutes } from './routes/raw-inference.routes.js'
import { tensorRoutes } from './routes/tensors.routes.js'
import { schemaRegistry } from './schemas/common.schemas.js'
import { validatorCompiler } from './validation.js'

export interface ServerOptions {
  readonly logger: FastifyBaseLogger
  readonly bodyLimitBytes: number
  readonly publicUrl: string
  readonly maxArchiveBytes: number
  readonly version: string
  /** Largest inference request body (JSON or binary tensors). */
  readonly maxInferBytes: number
  /** Largest body of the routes whose body is all JSON (`/v1/inference`, `/v1/embeddings`). */
  readonly maxInferJsonBytes: number
  /** How long a connection waits on its client (head, keep-alive, body). */
  readonly timeouts: HttpTimeouts
  /** Who may read `/metrics` on this server; `undefined`: it is served by a listener of its own. */
  readonly metricsAccess: MetricsAccess | undefined
  /** The web console's built files, served at /console/; `undefined`: not built. */
  readonly consoleFiles: string | undefined
}

export interface ServerServices {
  readonly accounts: AccountService
  readonly namespaces: NamespaceService
  readonly uploads: UploadPipeline
  readonly catalog: ModelCatalog
  readonly deployments: DeploymentService
  readonly repository: ModelRepository
  readonly tensors: TensorInventory
  readonly orgModels: OrgModelRegistry
  readonly inference: InferenceService
  readonly analytics: InferenceAnalytics
  readonly metrics: Metrics
  /** Each model's last hour on this server. */
  readonly history: ModelHistory
}

// Past every path parameter's schema bound (1024 characters, encoded up to three times as long)
// and below Node's 16 KiB bound on the request head, so that a longer segment answers 414.
const MAX_PATH_PARAM_LENGTH = 8 * 1024

// Client-chosen request ids are echoed in headers and logs, so only a tame alphabet is kept.

/** The top bar of /docs: berth's name, in the bar's own colours. */
const DOCS_LOGO =
  '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="32" viewBox="0 0 120 32">' +
  '<text x="0" y="24" font-family="sans-serif" font-size="24" font-weight="700" fill="#ffffff">berth</text></svg>'

/** Probes and scrapes, answered every few seconds: logged at debug, not info. */
const QUIET_ROUTES = new Set(['/healthz', '/metrics', '/v2/health/live', '/v2/health/ready'])

/**
 * A request's one log line (its `reqId` comes with the request's logger): method, route, status,
 * duration, the namespace and model it named, and the code it was refused with. Never the URL
 * itself: a presigned upload's carries its signature.
 */
function logRequest(
  request: FastifyRequest,
  route: string,
  status: number,
  elapsedMs: number,
): void {
  const params = (request.params ?? {}) as Record<string, unknown>
  const header = request.headers['x-namespace']
  const namespace =
    params.namespace_id ?? params.namespace ?? (typeof header === 'string' ? header : undefined)
  const model = params.model_id ?? params.name
  const code = refusalOf(request)
  const line = {
    method: request.method,
    route,
    status,
    durationMs: Math.round(elapsedMs * 100) / 100,
    ...(namespace === undefined ? {} : { namespace }),
    ...(model === undefined ? {} : { model }),
    ...(code === undefined ? {} : { code }),
  }
  if (QUIET_ROUTES.has(route) && status < 400) request.log.debug(line, 'request')
  else request.log.info(line, 'request')
}

/**
 * Builds the HTTP app: every route, its schemas, the OpenAPI document, the error envelope.
 * It does not listen; `main.ts` does, tests call `inject()`.
 */
export async function buildServer(
  options: ServerOptions,
  services: ServerServices,
): Promise<FastifyInstance> {
  const guard = new ConnectionGuard(options.timeouts, options.logger)
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    ...guard.serverOptions(),
    // Path parameters are bounded by their schemas (a 422 naming the field, as documented). The
    // router's own default (100 characters) would cut in first; past this bound it answers 414
    // `request_uri_too_long`, and Node's limit on the request head bounds the whole URL (431).
    routerOptions: { maxParamLength: MAX_PATH_PARAM_LENGTH },
    frameworkErrors: answerFrameworkError,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id']
      return typeof incoming === 'string' && REQUEST_ID_PATTERN.test(incoming)
        ? incoming
        : `req_${randomUUID()}`
    },
    // Requests that arrive while closing get berth's own 503 envelope (hook below).
    return503OnClosing: false,
    // One line per request, written when it is answered (onResponse below).
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<ZodTypeProvider>()

  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  acceptEmptyJson(app)
  installErrorHandler(app)
  guard.install(app)

  // A span per request while tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT); nothing otherwise.
  if (tracingOn()) installRequestSpans(app)

  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    // A client that leaves before its answer is written (mid-upload, while its inference waits)
    // is the client's doing, not a server fault: said once, at info, whatever was cut short.
    let finished = false
    reply.raw.once('finish', () => {
      finished = true
    })
    reply.raw.once('close', () => {
      if (!finished && !reply.raw.writableFinished) {
        request.log.info({ elapsedMs: Math.round(reply.elapsedTime) }, 'the client went away')
      }
    })
    if (closing) {
      reply.header('connection', 'close')
      throw new BerthError('server_shutting_down', 'the server is shutting down')
    }
  })
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched'
    services.metrics.httpRequestDuration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    )
    logRequest(request, route, reply.statusCode, reply.elapsedTime)
  })

  const toJsonSchema = createJsonSchemaTransform({ schemaRegistry })
  const optionalBodies = new Set<string>()
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'berth',
        version: options.version,
        description:
          'Self-hosted model registry and inference server, compatible with the Mixpeek custom-models API.',
      },
      servers: [{ url: options.publicUrl }],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API key, sk_…' },
        },
      },
    },
    transform: (input) => {
      // Swagger marks every body required; remember the routes whose body may be left out.
      const body = input.schema?.body as { safeParse?: (v: unknown) => { success: boolean } }
      if (body?.safeParse?.(undefined).success === true) {
        optionalBodies.add(`${String(input.route.method).toLowerCase()} ${openapiPath(input.url)}`)
      }
      return toJsonSchema(input)
    },
    transformObject: (document) =>
      withOperationExamples(
        markOptionalBodies(
          tidyComponentSchemas(createJsonSchemaTransformObject({ schemaRegistry })(document)),
          optionalBodies,
        ),
      ),
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    // berth's own page: its name in the title and the top bar, not Swagger's.
    theme: { title: 'berth API' },
    logo: { type: 'image/svg+xml', content: Buffer.from(DOCS_LOGO), href: '/docs' },
    uiConfig: { docExpansion: 'list', tryItOutEnabled: true, displayRequestDuration: true },
  })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  await app.register(consoleRoutes, { root: options.consoleFiles })

  await app.register(operationsRoutes)
  if (options.metricsAccess !== undefined) {
    await app.register(metricsRoutes, {
      metrics: services.metrics,
      access: options.metricsAccess,
    })
  }
  const inferenceOptions = {
    catalog: services.catalog,
    inference: services.inference,
    maxRequestBytes: options.maxInferBytes,
    version: options.version,
  }
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', authenticate(services.accounts))
      await v1.register(namespaceRoutes, { namespaces: services.namespaces })
      await v1.register(modelRoutes, {
        uploads: services.uploads,
        catalog: services.catalog,
        deployments: services.deployments,
        publicUrl: options.publicUrl,
        maxArchiveBytes: options.maxArchiveBytes,
        metrics: services.metrics,
      })
      await v1.register(modelHistoryRoutes, {
        catalog: services.catalog,
        history: services.history,
      })
      await v1.register(tensorRoutes, { tensors: services.tensors })
      await v1.register(inferenceRoutes, inferenceOptions)
      await v1.register(rawInferenceRoutes, {
        rawInference: new RawInference(services),
        inference: services.inference,
        maxJsonBytes: Math.min(options.maxInferBytes, options.maxInferJsonBytes),
      })
      await v1.register(openAiRoutes, {
        embeddings: new OpenAiEmbeddings(services),
        inference: services.inference,
        maxJsonBytes: Math.min(options.maxInferBytes, options.maxInferJsonBytes),
      })
      await v1.register(orgModelRoutes, { orgModels: services.orgModels })
      await v1.register(orgMetricsRoutes, {
        metrics: services.metrics,
        namespaces: services.namespaces,
      })
      await v1.register(nodeRoutes, {
        deployments: services.deployments,
        namespaces: services.namespaces,
      })
      await v1.register(analyticsRoutes, { analytics: services.analytics })
    },
    { prefix: '/v1' },
  )
  // berth's presigned upload URL: its signature is the authority, not a bearer key.
  await app.register(orgUploadRoutes, { prefix: '/v1', orgModels: services.orgModels })
  await app.register(oipHealthRoutes, { prefix: '/v2', deployments: services.deployments })
  await app.register(
    async (v2) => {
      v2.addHook('onRequest', authenticate(services.accounts))
      await v2.register(oipRoutes, inferenceOptions)
      // A plugin of its own: oipRoutes reads raw bodies, the repository routes read JSON.
      await v2.register(oipExtensionRoutes, {
        catalog: services.catalog,
        inference: services.inference,
        repository: services.repository,
      })
    },
    { prefix: '/v2' },
  )
  return app
}

/**
 * The listener of its own that serves `/metrics` (BERTH_METRICS_PORT), as `access` allows, and
 * nothing else; errors in the same envelope as the API's. It does not listen; `main.ts` does.
 */
export async function buildMetricsServer(options: {
  readonly logger: FastifyBaseLogger
  readonly metrics: Metrics
  readonly access: MetricsAccess
  /** The API's bounds on slow clients hold here too. */
  readonly timeouts: HttpTimeouts
}): Promise<FastifyInstance> {
  const guard = new ConnectionGuard(options.timeouts, options.logger)
  const app = Fastify({
    loggerInstance: options.logger,
    ...guard.serverOptions(),
    frameworkErrors: answerFrameworkError,
  }).withTypeProvider<ZodTypeProvider>()
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  acceptEmptyJson(app)
  installErrorHandler(app)
  guard.install(app)
  await app.register(metricsRoutes, { metrics: options.metrics, access: options.access })
  return app
}

/**
 * An empty body read as no body, whatever its content type says (as FastAPI reads it): clients
 * generated from the API send `Content-Type: application/json` with nothing for calls whose body
 * is optional. A route that needs a body still refuses its absence (422); any other JSON is
 * parsed as Fastify does (prototype poisoning refused).
 */
function acceptEmptyJson(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString()
    if (text.trim() === '') {
      done(null, undefined)
      return
    }
    json(request, text, done)
  })
}

/** A route's URL as OpenAPI writes it: `:name` parameters as `{name}`. */
function openapiPath(url: string): string {
  return url.replaceAll(/:([A-Za-z0-9_]+)/g, '{$1}')
}

/**
 * Marks the request bodies in `optional` (`method path`) as not required: a client may leave
 * them out, or send an empty body.
 */
function markOptionalBodies<D extends object>(document: D, optional: ReadonlySet<string>): D {
  const paths = (document as { paths?: Record<string, Record<string, { requestBody?: object }>> })
    .paths
  for (const [path, methods] of Object.entries(paths ?? {})) {
    for (const [method, operation] of Object.entries(methods)) {
      if (operation.requestBody !== undefined && optional.has(`${method} ${path}`)) {
        operation.requestBody = { ...operation.requestBody, required: false }
      }
    }
  }
  return document
}
