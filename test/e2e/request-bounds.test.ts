import assert from 'node:assert/strict'
import { after, before, it } from 'node:test'
import type { LightMyRequestResponse } from 'fastify'
import { MODEL_NAME_PATTERN, MODEL_VERSION_PATTERN } from '../../src/domain/model.js'
import { NAMESPACE_NAME_PATTERN } from '../../src/domain/namespace.js'
import { multipartBody } from '../helpers/multipart.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, keptFiles } from '../helpers/uploads.js'

/**
 * Every bound the OpenAPI document states for a request (numeric ranges, string lengths,
 * patterns, enums, integer types) is the one enforced: for each, read from `GET /openapi.json`,
 * a value just inside is accepted and one just outside answers 422 naming that field.
 */

type Schema = {
  $ref?: string
  type?: string | string[]
  anyOf?: Schema[]
  properties?: Record<string, Schema>
  items?: Schema
  enum?: unknown[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  minLength?: number
  maxLength?: number
  pattern?: string
}
type Parameter = { in: 'path' | 'query' | 'header'; name: string; schema: Schema }
type Operation = {
  parameters?: Parameter[]
  requestBody?: { content: Record<string, { schema: Schema }> }
}
type Where = 'path' | 'query' | 'header' | 'body'

/** One documented bound: values just inside and just outside it. */
interface Probe {
  readonly where: Where
  readonly field: readonly string[]
  readonly bound: string
  readonly inside: readonly unknown[]
  readonly outside: readonly unknown[]
}

/** Hand-picked values for each documented pattern (a pattern gives no values by itself). */
const PATTERN_EXAMPLES: Record<string, { inside: string[]; outside: string[] }> = {
  [MODEL_NAME_PATTERN.source]: {
    inside: ['abc', `a${'b'.repeat(63)}`, 'Z-9_x'],
    outside: ['ab', `a${'b'.repeat(64)}`, '9abc', '_abc', 'a b c'],
  },
  [NAMESPACE_NAME_PATTERN.source]: {
    inside: ['abc', `a${'b'.repeat(63)}`, 'ns-not-an-id'],
    outside: ['ab', `a${'b'.repeat(64)}`, 'ns_abc', '9abc'],
  },
  [MODEL_VERSION_PATTERN.source]: {
    inside: ['0.0.0', '999999999.10.0'],
    outside: ['1.0', '01.0.0', '1.0.0.0', '1000000000.0.0', 'v1.0.0'],
  },
}

/** "Just" past a bound of a `number` field (integers step by 1). */
const EPSILON = 1e-6

function probesOf(schema: Schema, where: Where, field: string[]): Probe[] {
  const probes: Probe[] = []
  const add = (bound: string, inside: unknown[], outside: unknown[]) =>
    probes.push({ where, field, bound, inside, outside })
  const integer = schema.type === 'integer'
  const step = integer ? 1 : EPSILON
  if (schema.minimum !== undefined) {
    add(`minimum ${schema.minimum}`, [schema.minimum], [schema.minimum - step])
  }
  if (schema.exclusiveMinimum !== undefined) {
    const e = schema.exclusiveMinimum
    add(`exclusiveMinimum ${e}`, [e + step], [e])
  }
  if (schema.maximum !== undefined) {
    add(`maximum ${schema.maximum}`, [schema.maximum], [schema.maximum + step])
  }
  if (schema.exclusiveMaximum !== undefined) {
    const e = schema.exclusiveMaximum
    add(`exclusiveMaximum ${e}`, [e - step], [e])
  }
  if (integer) {
    const low = schema.minimum ?? (schema.exclusiveMinimum ?? -1) + 1
    add('integer', [low], [low + 0.5])
  }
  if (schema.pattern !== undefined) {
    const examples = PATTERN_EXAMPLES[schema.pattern]
    assert.ok(examples, `no example values for the pattern ${schema.pattern} of ${field}`)
    assert.ok(
      schema.minLength === undefined && schema.maxLength === undefined,
      `${field}: probe its lengths with the pattern's examples`,
    )
    add(`pattern ${schema.pattern}`, examples.inside, examples.outside)
  } else {
    if (schema.minLength !== undefined) {
      const n = schema.minLength
      // An empty path segment matches no route at all: nothing to probe below one character.
      const outside = where === 'path' && n <= 1 ? [] : ['a'.repeat(n - 1)]
      add(`minLength ${n}`, ['a'.repeat(n)], outside)
    }
    if (schema.maxLength !== undefined) {
      const n = schema.maxLength
      add(`maxLength ${n}`, ['a'.repeat(n)], ['a'.repeat(n + 1)])
    }
  }
  if (schema.enum !== undefined) {
    add('enum', schema.enum, [`${String(schema.enum[0])}-not-listed`])
  }
  return probes
}

/** How a request reaches past validation, and what it then answers. */
interface Base {
  readonly params?: Record<string, string>
  readonly query?: Record<string, string>
  /** A fresh JSON body for each request (names that must be unique differ each time). */
  readonly json?: () => Record<string, unknown>
  /** Multipart text fields; the file part is bytes that are not an archive. */
  readonly form?: Record<string, string>
  /** Decoded by the handler, not by a schema (Open Inference Protocol bodies): sent as is. */
  readonly raw?: string
  /** The route is authorised by a signed URL, not a bearer key. */
  readonly signed?: boolean
  /** Headers it needs beside the key (`X-Namespace` of the routes that name none in the path). */
  readonly headers?: Record<string, string>
  /**
   * The body holds arrays whose elements' bounds are left unprobed here (said per route, so a
   * new array is never skipped unnoticed); the array itself is probed where its schema bounds it.
   */
  readonly arrayItemsUnprobed?: boolean
  readonly answer: { readonly status: number; readonly code?: string }
}

let t: TestApp
let namespaceId: string
let doc: {
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Schema> }
}
let fresh = 0
const unique = (prefix: string) => `${prefix}-${++fresh}`

const notFound = (code: string) => ({ status: 404, code })
const BASES: Record<string, Base> = {
  'POST /v1/namespaces': {
    json: () => ({ namespace_name: unique('bounds-ns') }),
    answer: { status: 200 },
  },
  'GET /v1/namespaces/{namespace}': { answer: notFound('namespace_not_found') },
  'POST /v1/namespaces/list': { json: () => ({}), answer: { status: 200 } },
  'PATCH /v1/namespaces/{namespace}': {
    json: () => ({}),
    arrayItemsUnprobed: true,
    answer: notFound('namespace_not_found'),
  },
  'PUT /v1/namespaces/{namespace}': {
    json: () => ({}),
    arrayItemsUnprobed: true,
    answer: notFound('namespace_not_found'),
  },
  'POST /v1/inference': {
    json: () => ({ inference_name: 'missing_1_0_0', inputs: {} }),
    headers: { 'x-namespace': 'bounds-missing' },
    answer: notFound('namespace_not_found'),
  },
  'GET /v1/analytics/inference/performance': {
    headers: { 'x-namespace': 'bounds-missing' },
    answer: notFound('namespace_not_found'),
  },
  'POST /v1/embeddings': {
    json: () => ({ model: 'missing_1_0_0', input: 'x' }),
    arrayItemsUnprobed: true,
    answer: notFound('model_not_found'),
  },
  'DELETE /v1/namespaces/{namespace}': { answer: notFound('namespace_not_found') },
  // Past the form's validation the archive is inspected: these bytes are no gzip.
  'POST /v1/namespaces/{namespace_id}/models': {
    form: { name: 'bounds-model', version: '1.0.0', model_format: 'onnx', deploy: 'false' },
    answer: { status: 400, code: 'archive_not_gzip' },
  },
  'GET /v1/namespaces/{namespace_id}/models': { answer: { status: 200 } },
  'GET /v1/namespaces/{namespace_id}/models/{model_id}': { answer: notFound('model_not_found') },
  'DELETE /v1/namespaces/{namespace_id}/models/{model_id}': {
    answer: notFound('model_not_found'),
  },
  'POST /v1/namespaces/{namespace_id}/models/{model_id}/deploy': {
    json: () => ({}),
    answer: notFound('model_not_found'),
  },
  'POST /v1/namespaces/{namespace_id}/models/{model_id}/undeploy': {
    answer: notFound('model_not_found'),
  },
  'GET /v1/namespaces/{namespace_id}/models/{model_id}/history': {
    answer: notFound('model_not_found'),
  },
  'GET /v1/namespaces/{namespace_id}/models/{model_id}/tensors': {
    answer: notFound('model_not_found'),
  },
  'GET /v1/namespaces/{namespace_id}/models/{model_id}/tensors/{tensor_name}': {
    answer: notFound('model_not_found'),
  },
  'POST /v1/namespaces/{namespace_id}/models/{model_id}/infer': {
    raw: '{}',
    answer: notFound('model_not_found'),
  },
  'POST /v1/models/uploads': {
    json: () => ({ name: unique('bounds-org'), version: '1.0.0', model_format: 'onnx' }),
    answer: { status: 200 },
  },
  'POST /v1/models/uploads/{upload_id}/confirm': {
    json: () => ({}),
    answer: notFound('upload_not_found'),
  },
  'GET /v1/models/{model_id}': { answer: notFound('org_model_not_found') },
  'DELETE /v1/models/{model_id}': { answer: notFound('org_model_not_found') },
  'GET /v1/namespaces/{namespace_id}/models/available': { answer: { status: 200 } },
  'POST /v1/namespaces/{namespace_id}/models/org/{model_id}/enable': {
    json: () => ({}),
    answer: notFound('org_model_not_found'),
  },
  'POST /v1/namespaces/{namespace_id}/models/org/{model_id}/disable': {
    answer: notFound('org_model_not_enabled'),
  },
  'PUT /v1/models/uploads/{upload_id}/archive': {
    query: { expires: '1', signature: 'x' },
    raw: 'not an archive',
    signed: true,
    answer: { status: 403, code: 'upload_url_invalid' },
  },
  'GET /v2/models/{name}': { answer: notFound('model_not_found') },
  'GET /v2/models/{name}/ready': { answer: notFound('model_not_found') },
  'POST /v2/models/{name}/infer': { raw: '{}', answer: notFound('model_not_found') },
  'GET /v2/models/{name}/versions/{version}': { answer: notFound('model_not_found') },
  'GET /v2/models/{name}/versions/{version}/ready': { answer: notFound('model_not_found') },
  'POST /v2/models/{name}/versions/{version}/infer': {
    raw: '{}',
    answer: notFound('model_not_found'),
  },
  'GET /v2/models/{name}/config': { answer: notFound('model_not_found') },
  'GET /v2/models/{name}/versions/{version}/config': { answer: notFound('model_not_found') },
  'GET /v2/models/{name}/stats': { answer: notFound('model_not_found') },
  'GET /v2/models/{name}/versions/{version}/stats': { answer: notFound('model_not_found') },
  'POST /v2/repository/models/{name}/load': {
    json: () => ({}),
    answer: notFound('model_not_found'),
  },
  'POST /v2/repository/models/{name}/unload': {
    json: () => ({}),
    answer: notFound('model_not_found'),
  },
}

/** Path parameters of the base requests: a namespace that exists, ids that do not. */
function defaultParams(): Record<string, string> {
  return {
    namespace: 'bounds-missing',
    namespace_id: namespaceId,
    model_id: 'missing_1_0_0',
    upload_id: 'upl_missing',
    tensor_name: 'x',
    name: 'missing',
    version: '1.0.0',
  }
}

function resolve(schema: Schema): Schema {
  if (schema.$ref === undefined) return schema
  const found = doc.components.schemas[schema.$ref.split('/').pop() ?? '']
  assert.ok(found, `dangling ${schema.$ref}`)
  return found
}

/**
 * Every bound under `schema`, following object properties and nullable unions; arrays only
 * where `itemsUnprobed` says their elements' bounds are knowingly left out.
 */
function walk(
  schema: Schema,
  where: Where,
  field: string[],
  out: Probe[],
  itemsUnprobed = false,
): void {
  const s = resolve(schema)
  out.push(...probesOf(s, where, field))
  for (const [name, property] of Object.entries(s.properties ?? {})) {
    walk(property, where, [...field, name], out, itemsUnprobed)
  }
  for (const branch of s.anyOf ?? []) walk(branch, where, field, out, itemsUnprobed)
  if (!itemsUnprobed) {
    assert.equal(s.items, undefined, `${field}: bounds inside arrays are not probed here`)
  }
}

function setIn(target: Record<string, unknown>, field: readonly string[], value: unknown): void {
  const [head, ...rest] = field
  if (head === undefined) return
  if (rest.length === 0) {
    target[head] = value
    return
  }
  const child = (target[head] ?? {}) as Record<string, unknown>
  target[head] = child
  setIn(child, rest, value)
}

/** Sends the base request of `path`, with `probe`'s field set to `value` if given. */
function send(
  method: string,
  path: string,
  base: Base,
  probe?: { readonly where: Where; readonly field: readonly string[]; readonly value: unknown },
): Promise<LightMyRequestResponse> {
  const params = { ...defaultParams(), ...base.params }
  const query: Record<string, string> = { ...base.query }
  const json = base.json?.()
  const form: Record<string, string> = { ...base.form }
  const headers: Record<string, string> = path.startsWith('/v2/')
    ? { 'x-namespace': namespaceId }
    : { ...base.headers }
  if (probe !== undefined) {
    const name = probe.field[0] ?? ''
    const text = String(probe.value)
    if (probe.where === 'path') params[name] = text
    else if (probe.where === 'query') query[name] = text
    else if (probe.where === 'header') headers[name] = text
    else if (base.form !== undefined) form[name] = text
    else if (json !== undefined) setIn(json, probe.field, probe.value)
    else assert.fail(`${method} ${path}: no body to set ${probe.field} in`)
  }
  const search = new URLSearchParams(query).toString()
  const url =
    path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? '')) +
    (search === '' ? '' : `?${search}`)
  let body: unknown = json
  if (base.form !== undefined) {
    const multipart = multipartBody([
      ...formFields(form),
      archivePart(Buffer.from('these bytes are not a .tar.gz')),
    ])
    body = multipart.payload
    Object.assign(headers, multipart.headers)
  } else if (base.raw !== undefined) {
    body = base.raw
    headers['content-type'] = 'application/json'
  }
  return t.request({
    method: method as 'GET' | 'POST' | 'PUT' | 'DELETE',
    url,
    key: base.signed === true ? undefined : BOOTSTRAP_KEY,
    body,
    headers,
  })
}

const describeAnswer = (res: LightMyRequestResponse) =>
  `${res.statusCode} ${res.body.slice(0, 300)}`

before(async () => {
  t = await startTestApp()
  namespaceId = await createNamespace(t, 'bounds')
  const res = await t.request({ method: 'GET', url: '/openapi.json' })
  assert.equal(res.statusCode, 200)
  doc = res.json()
})
after(() => t.close())

it('enforces exactly the bounds the OpenAPI document states for each request', async () => {
  const before = await keptFiles(t.dataDir)
  let probed = 0
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const route = `${method.toUpperCase()} ${path}`
      const base = BASES[route]
      const probes: Probe[] = []
      for (const p of operation.parameters ?? []) walk(p.schema, p.in, [p.name], probes)
      // Bodies the handler decodes itself answer their own codes (the Open Inference Protocol
      // codec's 400s), not 422: their schemas document the shape only.
      if (base?.raw === undefined) {
        for (const content of Object.values(operation.requestBody?.content ?? {})) {
          walk(content.schema, 'body', [], probes, base?.arrayItemsUnprobed === true)
        }
      }
      if (probes.length === 0) continue
      assert.ok(base, `${route} documents bounds: add its base request to BASES`)

      const answer = await send(method, path, base)
      const expected = base.answer
      assert.equal(answer.statusCode, expected.status, `${route}: ${describeAnswer(answer)}`)
      if (expected.code !== undefined) assert.equal(answer.json().error.code, expected.code, route)

      for (const probe of probes) {
        const label = `${route} ${probe.where}.${probe.field.join('.')} ${probe.bound}`
        for (const value of probe.inside) {
          const res = await send(method, path, base, { ...probe, value })
          const what = `${label}: ${JSON.stringify(value)} is inside: ${describeAnswer(res)}`
          // A path value names nothing that exists, and an integer at the edge of the safe
          // range may meet a server limit (file_size_bytes past the archive limit: 413): any
          // answer but a refused field. Every other value inside reaches the base answer.
          if (probe.where === 'path' || Math.abs(Number(value)) === Number.MAX_SAFE_INTEGER) {
            assert.notEqual(res.statusCode, 422, what)
          } else {
            assert.equal(res.statusCode, expected.status, what)
            if (expected.code !== undefined)
              assert.equal(res.json().error.code, expected.code, what)
          }
          probed += 1
        }
        for (const value of probe.outside) {
          const res = await send(method, path, base, { ...probe, value })
          const what = `${label}: ${JSON.stringify(value)} is outside: ${describeAnswer(res)}`
          assert.equal(res.statusCode, 422, what)
          const body = res.json()
          assert.equal(body.error.code, 'request_validation_failed', what)
          if (path === '/v1/embeddings') {
            // OpenAI's error shape names the refused field in `param`.
            assert.equal(body.error.param, probe.field.at(-1), what)
            probed += 1
            continue
          }
          const root = { path: 'path', query: 'query', header: 'header', body: 'body' }[probe.where]
          const locs = (body.detail as Array<{ loc: unknown[] }>).map((d) => JSON.stringify(d.loc))
          assert.ok(locs.includes(JSON.stringify([root, ...probe.field])), `${what} (${locs})`)
          probed += 1
        }
      }
    }
  }
  // The upload form's numbers, the serving settings, the namespace name, the org upload's
  // resources all have bounds: far more than a handful of probes.
  assert.ok(probed > 150, `only ${probed} probes`)
  // Refused and accepted uploads alike left nothing on disk.
  assert.deepEqual(await keptFiles(t.dataDir), before)
})
