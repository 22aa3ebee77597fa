import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { mixpeekStatus } from '../../domain/deployment-state.js'
import type { ResourceRequirements } from '../../domain/model.js'
import type { OrgModelRegistry } from '../../registry/org-model-registry.js'
import { principalOf } from '../authentication.js'
import { STREAMED_BODY } from '../connection-guard.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import { WaitQuerySchema } from '../schemas/model.schemas.js'
import {
  AvailableOrgModelsResponseSchema,
  ConfirmModelUploadRequestSchema,
  ConfirmModelUploadResponseSchema,
  CreateModelUploadRequestSchema,
  DisableOrgModelResponseSchema,
  EnableOrgModelRequestSchema,
  EnableOrgModelResponseSchema,
  ModelPresignedUrlResponseSchema,
  NamespaceOrgModelParamsSchema,
  OrgModelDeleteResponseSchema,
  OrgModelDetailResponseSchema,
  OrgModelListResponseSchema,
  OrgModelParamsSchema,
  SignedUploadQuerySchema,
  UploadParamsSchema,
} from '../schemas/org-model.schemas.js'
import { orgModelView } from '../views/org-model-view.js'

export interface OrgModelRoutesOptions {
  readonly orgModels: OrgModelRegistry
}

const tags = ['Models']

/**
 * The organization registry (Mixpeek's `/v1/models…` and the namespace enable and
 * disable routes). Behind the authentication hook.
 */
export const orgModelRoutes: FastifyPluginAsyncZod<OrgModelRoutesOptions> = async (
  app,
  { orgModels },
) => {
  app.post(
    '/models/uploads',
    {
      schema: {
        tags,
        summary: 'Start an org model upload: a presigned URL to PUT the archive to',
        security: BEARER_AUTH,
        body: CreateModelUploadRequestSchema,
        response: {
          200: ModelPresignedUrlResponseSchema,
          ...errorResponses(401, 403, 409, 413, 422),
        },
      },
    },
    async (request) => {
      const body = request.body
      const resources = body.resource_requirements
      const ticket = await orgModels.createUpload(principalOf(request), {
        name: body.name,
        version: body.version,
        format: body.model_format,
        description: body.description ?? null,
        framework: body.framework ?? null,
        taskType: body.task_type ?? null,
        resources: {
          numCpus: resources.num_cpus,
          numGpus: resources.num_gpus,
          memoryBytes: resources.memory,
        },
        expiresInSeconds: body.presigned_url_expiration,
        declaredSizeBytes: body.file_size_bytes ?? null,
      })
      const { model } = ticket
      return {
        upload_id: model.uploadId,
        presigned_url: ticket.presignedUrl,
        s3_key: ticket.storageKey,
        expires_at: model.uploadExpiresAt,
        organization_id: model.organizationId,
        name: model.name,
        version: model.version,
        model_format: model.format,
      }
    },
  )

  app.post(
    '/models/uploads/:upload_id/confirm',
    {
      schema: {
        tags,
        summary: 'Confirm an org model upload: validate the archive and record the model',
        description:
          'Validates the uploaded archive exactly as a direct upload (archive rules, format checks, a trial load for ONNX). A failed validation is recorded (validation_status failed, validation_errors) and its archive removed.',
        security: BEARER_AUTH,
        params: UploadParamsSchema,
        body: ConfirmModelUploadRequestSchema,
        response: {
          200: ConfirmModelUploadResponseSchema,
          ...errorResponses(400, 401, 403, 404, 422),
        },
      },
    },
    async (request) => {
      const model = await orgModels.confirm(principalOf(request), request.params.upload_id)
      const passed = model.validationStatus === 'passed'
      return {
        success: passed,
        upload_id: model.uploadId,
        model_id: model.modelId,
        validation_status: model.validationStatus,
        validation_errors: model.validationErrors.length === 0 ? null : [...model.validationErrors],
        s3_archive_url: passed ? model.archive.url : null,
        message: passed
          ? `org model "${model.modelId}" is ready to enable in namespaces`
          : `validation ${model.validationStatus}`,
      }
    },
  )

  app.get(
    '/models',
    {
      schema: {
        tags,
        summary: 'List the organization registry',
        security: BEARER_AUTH,
        response: { 200: OrgModelListResponseSchema, ...errorResponses(401, 403) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const models = await orgModels.list(principal)
      const enabled = await orgModels.enabledCopies(principal)
      return {
        success: true,
        models: models.map((m) => ({
          model_id: m.modelId,
          name: m.name,
          version: m.version,
          model_format: m.format,
          description: m.description,
          framework: m.framework,
          task_type: m.taskType,
          deployed: (enabled.get(m.uploadId) ?? []).some(
            (c) => c.deployment.status.state === 'deployed',
          ),
          validation_status: m.validationStatus,
          created_at: m.createdAt,
          updated_at: m.updatedAt,
        })),
        total: models.length,
        organization_id: principal.organizationId,
      }
    },
  )

  app.get(
    '/models/:model_id',
    {
      schema: {
        tags,
        summary: 'Get an org model',
        security: BEARER_AUTH,
        params: OrgModelParamsSchema,
        response: { 200: OrgModelDetailResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request)
      const model = await orgModels.get(principal, request.params.model_id)
      const copies = (await orgModels.enabledCopies(principal)).get(model.uploadId) ?? []
      return { success: true, model: orgModelView(model, copies) }
    },
  )

  app.delete(
    '/models/:model_id',
    {
      schema: {
        tags,
        summary: 'Delete an org model and its archive (refused while enabled in a namespace)',
        security: BEARER_AUTH,
        params: OrgModelParamsSchema,
        response: {
          200: OrgModelDeleteResponseSchema,
          ...errorResponses(401, 403, 404, 409, 422),
        },
      },
    },
    async (request) => {
      const model = await orgModels.delete(principalOf(request), request.params.model_id)
      return {
        success: true,
        model_id: model.modelId,
        message: `org model "${model.modelId}" and its archive deleted`,
      }
    },
  )

  app.get(
    '/namespaces/:namespace_id/models/available',
    {
      schema: {
        tags: ['Custom Models'],
        summary: 'List the org models, with whether this namespace enables each',
        security: BEARER_AUTH,
        params: NamespaceOrgModelParamsSchema.pick({ namespace_id: true }),
        response: { 200: AvailableOrgModelsResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespaceId, models } = await orgModels.available(
        principalOf(request),
        request.params.namespace_id,
      )
      return {
        success: true,
        models: models.map(({ model, enabled }) => ({
          model_id: model.modelId,
          name: model.name,
          version: model.version,
          model_format: model.format,
          description: model.description,
          framework: model.framework,
          task_type: model.taskType,
          validation_status: model.validationStatus,
          enabled_in_namespace: enabled,
        })),
        total: models.length,
        namespace_id: namespaceId,
      }
    },
  )

  app.post(
    '/namespaces/:namespace_id/models/org/:model_id/enable',
    {
      schema: {
        tags: ['Custom Models'],
        summary: 'Enable an org model in this namespace',
        description:
          'The model then is listed, deployed and served in the namespace like a direct upload (same model_id). deploy=true deploys it at once; ?wait=true waits until deployed or failed.',
        security: BEARER_AUTH,
        params: NamespaceOrgModelParamsSchema,
        querystring: WaitQuerySchema,
        body: EnableOrgModelRequestSchema,
        response: {
          200: EnableOrgModelResponseSchema,
          ...errorResponses(400, 401, 403, 404, 409, 422),
        },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const overrides = request.body?.resource_overrides ?? {}
      const resourceOverrides: Partial<ResourceRequirements> = {
        ...(overrides.num_cpus === undefined ? {} : { numCpus: overrides.num_cpus }),
        ...(overrides.num_gpus === undefined ? {} : { numGpus: overrides.num_gpus }),
        ...(overrides.memory === undefined ? {} : { memoryBytes: overrides.memory }),
      }
      const deploy = request.body?.deploy ?? false
      const model = await orgModels.enable(principalOf(request), namespace_id, model_id, {
        deploy,
        wait: request.query.wait === 'true',
        resourceOverrides,
      })
      const mixpeek = mixpeekStatus(model.deployment.status.state)
      const status: 'deployed' | 'pending' | 'failed' | 'skipped' = !deploy
        ? 'skipped'
        : mixpeek === 'not_deployed'
          ? 'pending'
          : mixpeek
      return {
        success: mixpeek !== 'failed',
        model_id: model.modelId,
        namespace_id: model.namespaceId,
        deployment_status: status,
        message: `org model "${model.modelId}" enabled in the namespace${deploy ? `; deployment ${model.deployment.status.state}` : ''}`,
      }
    },
  )

  app.post(
    '/namespaces/:namespace_id/models/org/:model_id/disable',
    {
      schema: {
        tags: ['Custom Models'],
        summary: 'Disable an org model in this namespace (the org model stays)',
        security: BEARER_AUTH,
        params: NamespaceOrgModelParamsSchema,
        response: { 200: DisableOrgModelResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const model = await orgModels.disable(principalOf(request), namespace_id, model_id)
      return {
        success: true,
        model_id: model.modelId,
        namespace_id: model.namespaceId,
        message: `org model "${model.modelId}" disabled in the namespace`,
      }
    },
  )
}

/**
 * `PUT /v1/models/uploads/{upload_id}/archive`: berth's own presigned URL, for artifact stores
 * that cannot sign one. The URL's expiring signature is the authority: no bearer key.
 */
export const orgUploadRoutes: FastifyPluginAsyncZod<OrgModelRoutesOptions> = async (
  app,
  { orgModels },
) => {
  // The body is streamed to the store as it comes; the registry bounds its size.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
  app.put(
    '/models/uploads/:upload_id/archive',
    {
      // The URL is a bearer credential until it expires: logged without its signature.
      logSerializers: { req: signedUploadRequestForLog },
      // An archive takes as long as it keeps coming.
      config: STREAMED_BODY,
      schema: {
        tags,
        summary: 'Upload an org model archive to a berth presigned URL',
        description:
          'The presigned_url of POST /v1/models/uploads when the artifact store is the file store. 403 upload_url_invalid when the signature is wrong or expired.',
        params: UploadParamsSchema,
        querystring: SignedUploadQuerySchema,
        response: {
          200: OrgModelDeleteResponseSchema.pick({ success: true, message: true }),
          ...errorResponses(403, 404, 409, 413, 422),
        },
      },
    },
    async (request) => {
      const { sizeBytes } = await orgModels.receiveArchive(
        request.params.upload_id,
        request.query,
        request.raw,
      )
      return { success: true, message: `${sizeBytes} bytes received` }
    },
  )
}

/** What the request log says of a PUT to a signed upload URL: its path, never its signature. */
function signedUploadRequestForLog(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: request.url.replace(/([?&]signature=)[^&]*/, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
  }
}
