import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { TensorInventory } from '../../registry/tensor-inventory.js'
import { principalOf } from '../authentication.js'
import { BEARER_AUTH, errorResponses } from '../schemas/common.schemas.js'
import { ModelParamsSchema } from '../schemas/model.schemas.js'

export interface TensorRoutesOptions {
  readonly tensors: TensorInventory
}

const tags = ['Custom Models']

const TensorInventorySchema = z.object({
  success: z.boolean(),
  model_id: z.string(),
  tensor_count: z.number().int(),
  parameter_count: z.number().int(),
  tensors: z.array(
    z.object({
      name: z.string(),
      dtype: z.string().describe('safetensors dtype name: F32, F16, BF16, I64, …'),
      shape: z.array(z.number().int()),
    }),
  ),
})

const TensorParamsSchema = ModelParamsSchema.extend({
  tensor_name: z.string().min(1).max(1024).describe('URL-encoded tensor name'),
})

/**
 * `…/models/{model_id}/tensors[/{tensor_name}]`: the weights inventory of safetensors and
 * state_dict models, and one tensor's raw bytes (berth's answer to `load_namespace_model`).
 */
export const tensorRoutes: FastifyPluginAsyncZod<TensorRoutesOptions> = async (
  app,
  { tensors: inventory },
) => {
  app.get(
    '/namespaces/:namespace_id/models/:model_id/tensors',
    {
      schema: {
        tags,
        summary: "List a weights model's tensors",
        security: BEARER_AUTH,
        params: ModelParamsSchema,
        response: { 200: TensorInventorySchema, ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { namespace_id, model_id } = request.params
      const { model, tensors } = await inventory.tensors(
        principalOf(request),
        namespace_id,
        model_id,
      )
      return {
        success: true,
        model_id: model.modelId,
        tensor_count: tensors.length,
        parameter_count: tensors.reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0),
        tensors: tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape] })),
      }
    },
  )

  app.get(
    '/namespaces/:namespace_id/models/:model_id/tensors/:tensor_name',
    {
      schema: {
        tags,
        summary: "One tensor's bytes",
        description:
          'The elements in row-major order, little-endian, as application/octet-stream; x-tensor-dtype and x-tensor-shape describe them.',
        security: BEARER_AUTH,
        params: TensorParamsSchema,
        response: {
          200: z.unknown().meta({ type: 'string', format: 'binary' }),
          ...errorResponses(400, 401, 403, 404, 422),
        },
      },
    },
    async (request, reply) => {
      const { namespace_id, model_id, tensor_name } = request.params
      const { tensor, stream } = await inventory.tensorBytes(
        principalOf(request),
        namespace_id,
        model_id,
        tensor_name,
      )
      return reply
        .type('application/octet-stream')
        .header('content-length', tensor.byteLength)
        .header('x-tensor-dtype', tensor.dtype)
        .header('x-tensor-shape', JSON.stringify(tensor.shape))
        .send(stream)
    },
  )
}
