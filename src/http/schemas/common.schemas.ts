import { z } from 'zod'

/**
 * Schemas registered here appear once under `components.schemas` in the OpenAPI document. It is
 * zod's global registry because `.meta()` (titles, descriptions, `format: binary`) writes there,
 * and the document generator reads metadata from one registry only.
 */
export const schemaRegistry = z.globalRegistry

const FieldErrorSchema = z.object({
  loc: z.array(z.union([z.string(), z.number()])),
  msg: z.string(),
  type: z.string(),
})
schemaRegistry.add(FieldErrorSchema, { id: 'ValidationErrorItem' })

const ErrorDetailSchema = z.object({
  type: z.string().describe('Stable error type, e.g. NotFoundError'),
  message: z.string().describe('Human-readable message'),
  code: z.string().describe('Stable snake_case code, listed in docs/errors.md'),
  details: z.record(z.string(), z.unknown()).optional(),
})
schemaRegistry.add(ErrorDetailSchema, { id: 'ErrorDetail' })

/** Mixpeek's `ErrorResponse`; 422 answers also carry FastAPI's `detail`. */
export const ErrorResponseSchema = z.object({
  success: z.literal(false),
  status: z.number().int(),
  error: ErrorDetailSchema,
  detail: z.array(FieldErrorSchema).optional(),
})
schemaRegistry.add(ErrorResponseSchema, { id: 'ErrorResponse' })

/** The error responses of a route, for its schema (and so for the OpenAPI document). */
export function errorResponses<S extends number>(
  ...statuses: S[]
): Record<S | 500, typeof ErrorResponseSchema> {
  const responses = { 500: ErrorResponseSchema } as Record<S | 500, typeof ErrorResponseSchema>
  for (const status of statuses) responses[status] = ErrorResponseSchema
  return responses
}

/** Routes that need `Authorization: Bearer sk_…`. */
export const BEARER_AUTH = [{ bearerAuth: [] }]

/** The `X-Namespace` header of the routes that name no namespace in their path. */
export const NamespaceHeaderSchema = z.object({
  'x-namespace': z
    .string()
    .optional()
    .describe('Namespace id (ns_…) or name; required (400 namespace_header_missing)'),
})
