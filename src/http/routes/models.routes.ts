import multipart from '@fastify/multipart'
import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import type { z } from 'zod'
import type { UnpackedArchive } from '../../archives/archive-workspace.js'
import { mixpeekStatus } from '../../domain/deployment-state.js'
import type { LoadPolicy } from '../../domain/load-policy.js'
import type { Model, ServingSettings } from '../../domain/model.js'
import type { Namespace } from '../../domain/namespace.js'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import type { Metrics } from '../../observability/metrics.js'
import type { DeploymentService } from '../../registry/deployment-service.js'
import type { ModelCatalog } from '../../registry/model-catalog.js'
import type { UploadPipeline, UploadRequest } from '../../registry/upload-pipeline.js'
import { principalOf } from '../authentication.js'
import { STREAMED_BODY } from '../connection-guard.js'
import { fieldValidationError } from '../field-errors.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import {
  DeployBodySchema,
  DeployQuerySchema,
  ModelDeleteResponseSchema,
  ModelDeployResponseSchema,
  ModelDetailResponseSchema,
  ModelListResponseSchema,
  ModelParamsSchema,
  ModelUndeployResponseSchema,
  ModelUploadResponseSchema,
  NamespaceModelsParamsSchema,
  UploadModelBodySchema,
  WaitQuerySchema,
} from '../schemas/model.schemas.js'
import { multipartValidatorCompiler, parseBody } from '../validation.js'
import { deploymentView, modelListItemView, modelView } from '../views/model-view.js'

export interface ModelRoutesOptions {
  readonly uploads: UploadPipeline
  readonly catalog: ModelCatalog
  readonly deployments: DeploymentService
  readonly publicUrl: string
  readonly maxArchiveBytes: number
  readonly metrics: Metrics
}

const tags = ['Custom Models']

/**
 * Bounds on the upload form's text parts. Known fields hold at most 128 characters; unknown ones
 * (newer clients send fields berth does not take) are ignored up to the same size, and any field
 * past it is refused (`form_field_too_large`) rather than cut short and read.
 */
const FORM_LIMITS = { fields: 32, parts: 40, fieldBytes: 16 * 1024, fieldNameBytes: 100 } as const

/**
 * `/v1/namespaces/{namespace_id}/models…`: upload, list, get, delete, deploy and undeploy. Behind
 * the authentication hook.
 */
export const modelRoutes: FastifyPluginAsyncZod<ModelRoutesOptions> = async (app, options) => {
  const { uploads, catalog, deployments, publicUrl, metrics } = options
  await app.register(multipart, {
    // berth enforces the archive limit itself while staging (archive_too_large); this bound only
    // keeps busboy from stopping first. The form's text is bounded in size and count, so fields
    // cost a request little memory; readUploadForm turns each limit into its own 413.
    limits: {
      fileSize: options.maxArchiveBytes + 1,
      files: 4,
      fields: FORM_LIMITS.fields,
      fieldSize: FORM_LIMITS.fieldBytes,
      parts: FORM_LIMITS.parts,
    },
  })

  const endpointOf = (model: Model) =>
    `${publicUrl}/v1/namespaces/${model.namespaceId}/models/${model.modelId}/infer`

  app.post(
    '/namespaces/:namespace_id/models',
    {
      schema: {
        tags,
        summary: 'Upload a custom model',
        description:
          'Multipart upload of a .tar.gz model archive with its metadata; parts may come in any order. Enterprise tier only.',
        operationId: 'upload_model_v1_namespaces__namespace_id__models_post',
        security: BEARER_AUTH,
        consumes: ['multipart/form-data'],
        params: NamespaceModelsParamsSchema,
        querystring: WaitQuerySchema,
        body: UploadModelBodySchema,
        response: {
          200: ModelUploadResponseSchema,
          ...errorResponses(400, 401, 403, 404, 409, 413, 422),
        },
      },
      validatorCompiler: multipartValidatorCompiler,
      // An archive takes as long as it keeps coming.
      config: STREAMED_BODY,
    },
    async (request, reply) => {
      let namespace: Namespace
      let form: { staged: UnpackedArchive | undefined; fields: Record<string, string> }
      try {
        namespace = await uploads.begin(
          principalOf(request),
          request.params.namespace_id,
          contentLength(request),
        )
        form = await readUploadForm(request, uploads)
      } catch (err) {
        // The body may be unread: close the connection rather than drain a huge upload.
        reply.header('connection', 'close')
        throw err
      }
      const { staged, fields } = form
      if (staged !== undefined) metrics.uploadBytes.inc(staged.sizeBytes)
      let upload: UploadRequest
      try {
        // The staged archive stands for the `file` part: the schema requires it like any field.
        upload = uploadRequestOf(parseBody(UploadModelBodySchema, { ...fields, file: staged }))
      } catch (err) {
        if (staged !== undefined) await uploads.discardStaged(staged)
        throw err
      }
      const model = await uploads.completeUpload(namespace, upload, {
        wait: request.query.wait === 'true',
      })
      return {
        success: true,
        model_id: model.modelId,
        deployment_status: mixpeekStatus(model.deployment.status.state),
        endpoint: endpointOf(model),
        model_archive_url: model.archive.url,
        deployment: deploymentView(model.deployment, deployments.replicasOf(model)),
      }
    },
  )

  app.get(
    '/namespaces/:namespace_id/models',
    {
      schema: {
        tags,
        summary: 'List models in a namespace',
        security: BEARER_AUTH,
        params: NamespaceModelsParamsSchema,
        response: { 200: ModelListResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace, models } = await catalog.list(
        principalOf(request),
        request.params.namespace_id,
      )
      return {
        success: true,
        models: models.map((m) => modelListItemView(m, endpointOf(m), deployments.replicasOf(m))),
        total: models.length,
        namespace_id: namespace.id,
      }
    },
  )

  app.get(
    '/namespaces/:namespace_id/models/:model_id',
    {
      schema: {
        tags,
        summary: 'Get a model',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        response: { 200: ModelDetailResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const model = await catalog.get(principalOf(request), namespace_id, model_id)
      return {
        success: true,
        model: modelView(model, endpointOf(model), deployments.replicasOf(model)),
      }
    },
  )

  app.post(
    '/namespaces/:namespace_id/models/:model_id/deploy',
    {
      schema: {
        tags,
        summary: 'Deploy a model',
        description:
          'Starts the model in a runner process. Answers at once (pending) unless wait=true, which blocks until deployed or failed. An already deployed model is left as is (cached) unless reload=true.',
        operationId: 'deploy_model_v1_namespaces__namespace_id__models__model_id__deploy_post',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        querystring: DeployQuerySchema,
        body: DeployBodySchema,
        response: { 200: ModelDeployResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const { model, cached } = await deployments.deploy(
        principalOf(request),
        namespace_id,
        model_id,
        {
          wait: request.query.wait === 'true',
          reload: request.query.reload === 'true',
          // Mixpeek's deploy has no body: absent (or null) keeps the settings.
          ...(request.body == null ? {} : { serving: servingChange(request.body) }),
        },
      )
      const { status, message } = model.deployment
      return {
        success: status.state !== 'failed',
        model_id: model.modelId,
        namespace_id: model.namespaceId,
        deployment_status: mixpeekStatus(status.state),
        cached,
        message: cached
          ? 'the model is already deployed'
          : `deployment ${status.state} (${status.reason})${message === null ? '' : `: ${message}`}`,
        deployment: deploymentView(model.deployment, deployments.replicasOf(model)),
      }
    },
  )

  app.post(
    '/namespaces/:namespace_id/models/:model_id/undeploy',
    {
      schema: {
        tags,
        summary: 'Undeploy a model',
        description:
          'Lets in-flight requests finish, stops the runner and frees its resources. The model and its archive are kept.',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        response: { 200: ModelUndeployResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const model = await deployments.undeploy(principalOf(request), namespace_id, model_id)
      return {
        success: true,
        model_id: model.modelId,
        namespace_id: model.namespaceId,
        deployment_status: mixpeekStatus(model.deployment.status.state),
        message: `model "${model.modelId}" undeployed`,
        deployment: deploymentView(model.deployment, 0),
      }
    },
  )

  app.delete(
    '/namespaces/:namespace_id/models/:model_id',
    {
      schema: {
        tags,
        summary: 'Delete a model, its stored archive and its files',
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        response: { 200: ModelDeleteResponseSchema, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const model = await catalog.delete(principalOf(request), namespace_id, model_id)
      return { success: true, model_id: model.modelId, message: `model "${model.modelId}" deleted` }
    },
  )
}

/**
 * Reads the multipart parts in wire order: the archive is staged to disk as it arrives, fields
 * are collected, and nothing is decided before the body ends (fields may follow the file).
 */
async function readUploadForm(
  request: FastifyRequest,
  uploads: UploadPipeline,
): Promise<{ staged: UnpackedArchive | undefined; fields: Record<string, string> }> {
  // Field names come from the client: a prototype-less object, so "__proto__" is just a name.
  const fields: Record<string, string> = Object.create(null)
  let staged: UnpackedArchive | undefined
  if (!request.isMultipart()) return { staged, fields }
  try {
    for await (const part of request.parts()) {
      if (part.type === 'field') {
        // busboy cuts an oversized value short and says so: refused, never read cut. A part's
        // name comes from its header, which busboy bounds only loosely.
        if (part.valueTruncated || Buffer.byteLength(part.fieldname) > FORM_LIMITS.fieldNameBytes) {
          throw fieldTooLarge(part.fieldname.slice(0, FORM_LIMITS.fieldNameBytes))
        }
        // Unknown fields are collected too: the schema drops them.
        if (typeof part.value === 'string') fields[part.fieldname] = part.value
        continue
      }
      if (part.fieldname !== 'file' || staged !== undefined) {
        part.file.resume()
        throw fieldValidationError([
          {
            loc: ['body', part.fieldname],
            msg: 'only one file, in the "file" field',
            type: 'extra_file',
          },
        ])
      }
      // Fields sent before the archive are checked before it is read: one out of bounds is
      // refused at once (422), as it would be after it, without waiting for the archive.
      checkFieldsSoFar(fields)
      staged = await uploads.stageArchive(part.file)
    }
  } catch (err) {
    if (staged !== undefined) await uploads.discardStaged(staged)
    if (isTooManyParts(err)) {
      throw new BerthError(
        'form_too_many_fields',
        `the upload form has more than ${FORM_LIMITS.fields} fields or ${FORM_LIMITS.parts} parts`,
        { details: { max_fields: FORM_LIMITS.fields, max_parts: FORM_LIMITS.parts }, cause: err },
      )
    }
    throw isMalformedMultipart(err)
      ? new BerthError('request_malformed', `the multipart body is malformed: ${err.message}`, {
          details: { reason: 'multipart' },
          cause: err,
        })
      : err
  }
  return { staged, fields }
}

/** Validates the form fields collected so far (those the schema knows) against their schemas. */
function checkFieldsSoFar(fields: Record<string, string>): void {
  const shape = UploadModelBodySchema.shape
  const present: Partial<Record<keyof typeof shape, true>> = {}
  for (const name of Object.keys(shape) as (keyof typeof shape)[]) {
    if (name !== 'file' && Object.hasOwn(fields, name)) present[name] = true
  }
  parseBody(UploadModelBodySchema.pick(present), fields)
}

function fieldTooLarge(field: string): BerthError {
  return new BerthError(
    'form_field_too_large',
    `the form field "${field}" is too large: at most ${FORM_LIMITS.fieldBytes} bytes, and ${FORM_LIMITS.fieldNameBytes} for its name`,
    {
      details: {
        field,
        max_bytes: FORM_LIMITS.fieldBytes,
        max_name_bytes: FORM_LIMITS.fieldNameBytes,
      },
    },
  )
}

/** @fastify/multipart's errors for a form past the `fields` or `parts` limit. */
function isTooManyParts(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return code === 'FST_FIELDS_LIMIT' || code === 'FST_PARTS_LIMIT'
}

/**
 * The multipart parser's own complaints about the body (no or a bad boundary, a body that ends
 * mid-part): the client's error, and fixed texts that are safe to show. File system errors carry
 * a `code` and stay internal.
 */
const MULTIPART_COMPLAINTS = [/boundary/i, /unexpected end of multipart data/i, /needle/i]

function isMalformedMultipart(err: unknown): err is Error {
  return (
    err instanceof Error &&
    !isBerthError(err) &&
    !('code' in err) &&
    !('statusCode' in err) &&
    MULTIPART_COMPLAINTS.some((complaint) => complaint.test(err.message))
  )
}

const GIB = 1024 ** 3

/** The upload form, validated, as the upload pipeline takes it. */
function uploadRequestOf(form: z.output<typeof UploadModelBodySchema>): UploadRequest {
  return {
    archive: form.file,
    name: form.name,
    version: form.version,
    format: form.model_format,
    framework: form.framework ?? null,
    taskType: form.task_type ?? null,
    resources: {
      numCpus: form.num_cpus,
      numGpus: form.num_gpus,
      memoryBytes: Math.round(form.memory_gb * GIB),
    },
    serving: {
      maxBatchSize: form.max_batch_size ?? null,
      maxQueueDelayUs: form.max_queue_delay_us,
      replicas: form.replicas,
      loadPolicy: form.load_policy ?? (form.deploy ? 'eager' : 'on_demand'),
      idleTimeoutS: form.idle_timeout_s ?? null,
      nodeSelector: form.node_selector ?? {},
    },
    deploy: form.deploy,
  }
}

/** The settings a deploy body changes (absent fields keep theirs). */
function servingChange(body: {
  max_batch_size?: number | null | undefined
  max_queue_delay_us?: number | undefined
  replicas?: number | undefined
  load_policy?: LoadPolicy | undefined
  idle_timeout_s?: number | null | undefined
  node_selector?: Readonly<Record<string, string>> | undefined
}): Partial<ServingSettings> {
  return {
    ...(body.node_selector === undefined ? {} : { nodeSelector: body.node_selector }),
    ...(body.load_policy === undefined ? {} : { loadPolicy: body.load_policy }),
    ...(body.idle_timeout_s === undefined ? {} : { idleTimeoutS: body.idle_timeout_s }),
    ...(body.max_batch_size === undefined ? {} : { maxBatchSize: body.max_batch_size }),
    ...(body.max_queue_delay_us === undefined ? {} : { maxQueueDelayUs: body.max_queue_delay_us }),
    ...(body.replicas === undefined ? {} : { replicas: body.replicas }),
  }
}

function contentLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length']
  const value = header === undefined ? Number.NaN : Number(header)
  return Number.isSafeInteger(value) ? value : undefined
}
