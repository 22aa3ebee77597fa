import type { FastifySchemaCompiler } from 'fastify'
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js'
import type { z } from 'zod'
import type { BerthError } from '../errors/berth-error.js'
import { fieldValidationError, toFieldErrors } from './field-errors.js'

const LOC_ROOT: Readonly<Record<string, string>> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
}

/**
 * Validates each request part with its zod schema and reports every problem at once as a
 * `request_validation_failed` error carrying FastAPI-style field errors.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const root = LOC_ROOT[httpPart ?? 'body'] ?? 'body'
  return (data: unknown) => validate(schema, root, data)
}

/**
 * Validates a body a handler collected itself (a multipart form) with its zod schema, as
 * `validatorCompiler` does for the others. Resolves the parsed value; throws
 * `request_validation_failed`.
 */
export function parseBody<S extends z.ZodType>(schema: S, data: unknown): z.output<S> {
  const result = validate(schema, 'body', data)
  if ('error' in result) throw result.error
  return result.value
}

/**
 * Parsing with `reportInput` lets a missing field (`input` undefined) be told apart from a wrong
 * one; `root` names the part in each field error's `loc`.
 */
function validate<S extends z.ZodType>(
  schema: S,
  root: string,
  data: unknown,
): { value: z.output<S> } | { error: BerthError } {
  const result = schema.safeParse(data, { reportInput: true })
  if (result.success) return { value: result.data }
  return { error: fieldValidationError(toFieldErrors(root, result.error.issues)) }
}

/**
 * For multipart routes: the body is streamed by the handler, which then checks the form it
 * collected with the same schema (`parseBody`); params and query are validated as
 * everywhere else.
 */
export function multipartValidatorCompiler<S>(route: FastifyRouteSchemaDef<S>) {
  if (route.httpPart === 'body') return () => ({ value: undefined })
  // Fastify types a route-level compiler by the whole route schema; each part is a zod schema.
  return validatorCompiler({ ...route, schema: route.schema as unknown as z.ZodType })
}

/**
 * For routes whose body is decoded by the handler (inference: JSON or binary tensors, checked
 * with codes that name the input): the body passes through untouched, the rest is validated.
 */
export function rawBodyValidatorCompiler<S>(route: FastifyRouteSchemaDef<S>) {
  if (route.httpPart === 'body') return (data: unknown) => ({ value: data })
  return validatorCompiler({ ...route, schema: route.schema as unknown as z.ZodType })
}
