import type { FastifySchemaCompiler } from 'fastify'
import type { FastifyRouteSchemaDef } from 'fastify/types/schema.js'
import type { z } from 'zod'
import { fieldValidationError, toFieldErrors } from './field-errors.js'

const LOC_ROOT: Readonly<Record<string, string>> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
}

/**
 * Validates each request part with its zod schema and reports every problem at once as a
 * `request_validation_failed` error carrying FastAPI-style field errors. Parsing with
 * `reportInput` lets a missing field (`input` undefined) be told apart from a wrong one.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const root = LOC_ROOT[httpPart ?? 'body'] ?? 'body'
  return (data: unknown) => {
    const result = schema.safeParse(data, { reportInput: true })
    if (result.success) return { value: result.data }
    return { error: fieldValidationError(toFieldErrors(root, result.error.issues)) }
  }
}

/**
 * Validates data a handler collected itself (a multipart form) with the part's zod schema, as
 * the compiler above does. Resolves the parsed value; throws `request_validation_failed`.
 */
export function parseRequestPart<S extends z.ZodType>(
  schema: S,
  data: unknown,
  httpPart: 'body' | 'querystring' = 'body',
): z.output<S> {
  const result = schema.safeParse(data, { reportInput: true })
  if (result.success) return result.data
  throw fieldValidationError(toFieldErrors(LOC_ROOT[httpPart] ?? 'body', result.error.issues))
}

/**
 * For multipart routes: the body is streamed by the handler, which then checks the form it
 * collected with the same schema (`parseRequestPart`); params and query are validated as
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
