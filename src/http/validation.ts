import type { FastifySchemaCompiler } from 'fastify'
import type { z } from 'zod'
import { type FieldError, fieldValidationError } from '../errors/berth-error.js'

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
    return { error: fieldValidationError(result.error.issues.map((i) => toFieldError(root, i))) }
  }
}

function toFieldError(root: string, issue: z.core.$ZodIssue): FieldError {
  const loc = [root, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))]
  if (issue.input === undefined) return { loc, msg: 'Field required', type: 'missing' }
  return { loc, msg: issue.message, type: issue.code }
}
