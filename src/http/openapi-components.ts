import { OPERATION_EXAMPLES } from './openapi-examples.js'

type Json = unknown

/**
 * fastify-type-provider-zod emits every registered schema twice, as `X` (response side) and
 * `XInput` (request side). Keeps the document lean: drops the unreferenced twin and names a
 * request-only schema `X` rather than `XInput`.
 */
export function tidyComponentSchemas<D extends object>(document: D): D {
  const { components, ...rest } = document as { components?: { schemas?: Record<string, Json> } }
  const schemas = components?.schemas
  if (schemas === undefined) return document
  const used = referencedSchemas(rest, schemas)

  const renames = new Map<string, string>()
  for (const name of used) {
    const base = name.endsWith('Input') ? name.slice(0, -'Input'.length) : undefined
    if (base !== undefined && base in schemas && !used.has(base)) renames.set(name, base)
  }
  const tidy: Record<string, Json> = {}
  for (const name of used) tidy[renames.get(name) ?? name] = schemas[name]
  const rewritten = rewriteRefs({ ...rest, components: { ...components, schemas: tidy } }, renames)
  return rewritten as D
}

/** Names of the component schemas reachable from `root`, following refs between schemas. */
function referencedSchemas(root: Json, schemas: Record<string, Json>): Set<string> {
  const used = new Set<string>()
  const pending: Json[] = [root]
  while (pending.length > 0) {
    const node = pending.pop()
    if (Array.isArray(node)) pending.push(...node)
    else if (typeof node === 'object' && node !== null) {
      for (const [key, value] of Object.entries(node)) {
        const name = key === '$ref' && typeof value === 'string' ? schemaName(value) : undefined
        if (name !== undefined && !used.has(name)) {
          used.add(name)
          pending.push(schemas[name])
        } else pending.push(value)
      }
    }
  }
  return used
}

const REF_PREFIX = '#/components/schemas/'

function schemaName(ref: string): string | undefined {
  return ref.startsWith(REF_PREFIX) ? ref.slice(REF_PREFIX.length) : undefined
}

function rewriteRefs(node: Json, renames: ReadonlyMap<string, string>): Json {
  if (Array.isArray(node)) return node.map((item) => rewriteRefs(item, renames))
  if (typeof node !== 'object' || node === null) return node
  const out: Record<string, Json> = {}
  for (const [key, value] of Object.entries(node)) {
    const name = key === '$ref' && typeof value === 'string' ? schemaName(value) : undefined
    out[key] =
      name !== undefined && renames.has(name)
        ? `${REF_PREFIX}${renames.get(name)}`
        : rewriteRefs(value, renames)
  }
  return out
}

interface MediaObject {
  schema?: unknown
  example?: unknown
}
interface OperationObject {
  requestBody?: { content?: Record<string, MediaObject> }
  responses?: Record<string, { content?: Record<string, MediaObject> }>
}

/**
 * Puts the examples into the document: each on its media type (`example`), and the binary
 * tensor extension's body beside the JSON one of the inference routes.
 */
export function withOperationExamples<T>(document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, OperationObject>> }).paths
  for (const [path, item] of Object.entries(paths ?? {})) {
    for (const [method, operation] of Object.entries(item)) {
      const examples = OPERATION_EXAMPLES[`${method} ${path}`]
      if (examples === undefined) continue
      const body = operation.requestBody?.content
      for (const [type, example] of Object.entries(examples.request ?? {})) {
        if (body === undefined) continue
        body[type] ??= { schema: { type: 'string', format: 'binary' } }
        ;(body[type] as MediaObject).example = example
      }
      const ok = operation.responses?.['200']?.content ?? {}
      for (const [type, example] of Object.entries(examples.answer)) {
        const media = ok[type]
        if (media !== undefined) media.example = example
      }
    }
  }
  return document
}
