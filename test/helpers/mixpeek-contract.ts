import { AssertionError } from 'node:assert'
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import type { LightMyRequestResponse } from 'fastify'
import { multipartBody } from './multipart.js'
import { readRepoFile } from './repo.js'
import type { TestApp } from './test-app.js'

// Mixpeek's published OpenAPI as the judge of berth: requests are built from it and checked
// against it before they are sent, answers are checked against it when they come back. Nothing
// here knows berth's own schemas, so a route that drifts from Mixpeek's shape fails here even when
// berth's document drifted with it.

type Schema = Record<string, unknown>
type Method = 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH'

interface Parameter {
  readonly name: string
  readonly in: 'path' | 'query' | 'header'
  readonly required?: boolean
  readonly schema: Schema
}

interface Operation {
  readonly operationId: string
  readonly method: Method
  readonly path: string
  readonly parameters: readonly Parameter[]
  readonly requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> }
  readonly responses: Record<string, { content?: Record<string, { schema: Schema }> }>
}

const DOCUMENT_ID = 'mixpeek'
const METHODS = new Set(['get', 'post', 'put', 'patch', 'delete'])

/** One call to a Mixpeek operation, in the names Mixpeek's document gives its parameters. */
export interface MixpeekCall {
  /** The bearer key; absent, no Authorization header (the 401 checks). */
  readonly key?: string
  /** Path parameters, each named as the document names it. */
  readonly path?: Record<string, string>
  /** Query parameters, each checked against its schema in the document. */
  readonly query?: Record<string, string | number | boolean>
  /** `X-Namespace`, for the operations whose document lists that header. */
  readonly namespace?: string
  /** A JSON body, checked against the operation's request schema first. */
  readonly json?: unknown
  /** Multipart form fields (typed, checked against the schema) and the archive as `file`. */
  readonly form?: { readonly fields: Record<string, unknown>; readonly file: Buffer }
  /** No body, with `Content-Type: application/json`: how clients call an optional body. */
  readonly emptyJson?: boolean
  /** The body is wrong on purpose: it must FAIL Mixpeek's request schema (the 422 checks). */
  readonly malformed?: boolean
  /**
   * The answer's status is one Mixpeek's document does not list for the operation (a berth
   * refusal such as 409): allowed, and then required, to be unlisted; its body is still checked.
   */
  readonly undocumented?: boolean
}

/** An answer that passed Mixpeek's schema for its status. */
export interface MixpeekAnswer {
  readonly status: number
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the tests
  readonly body: any
}

/**
 * Mixpeek's OpenAPI document, compiled: request bodies generated from its schemas, requests and
 * answers validated against them (Ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses), and a record
 * of the operations exercised.
 */
export class MixpeekContract {
  readonly #ajv: Ajv2020
  readonly #document: Schema
  readonly #operations = new Map<string, Operation>()
  readonly #validators = new Map<Schema, ValidateFunction>()
  readonly #components = new Map<string, Schema>()
  /** The statuses each operation answered so far, by operationId. */
  readonly exercised = new Map<string, Set<number>>()

  private constructor(document: Schema) {
    this.#document = document
    // strict: false because OpenAPI's `example` is no JSON Schema keyword.
    this.#ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(this.#ajv)
    // Multipart file fields; the bytes are not JSON, so any placeholder string stands for them.
    this.#ajv.addFormat('binary', true)
    this.#ajv.addSchema(document, DOCUMENT_ID)
    const paths = document.paths as Record<string, Record<string, Schema>>
    for (const [path, item] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (!METHODS.has(method)) continue
        const operation = {
          ...op,
          method: method.toUpperCase(),
          path,
          parameters: op.parameters ?? [],
        } as unknown as Operation
        this.#operations.set(operation.operationId, operation)
      }
    }
  }

  /** Loads `test/fixtures/mixpeek-openapi.json`. */
  static async load(): Promise<MixpeekContract> {
    return new MixpeekContract(JSON.parse(await readRepoFile('test/fixtures/mixpeek-openapi.json')))
  }

  /** Every operationId of the document. */
  get operationIds(): string[] {
    return [...this.#operations.keys()].sort()
  }

  operation(operationId: string): Operation {
    const op = this.#operations.get(operationId)
    if (op === undefined) throw new Error(`no operation ${operationId} in Mixpeek's document`)
    return op
  }

  /**
   * A request body for the operation from its schema: every property, required and optional,
   * valued from its `examples`, `example` or `default`, else by its type; then `overrides` (an
   * `undefined` removes the property).
   */
  sampleBody(
    operationId: string,
    overrides: Record<string, unknown> = {},
  ): Record<string, unknown> {
    const root = this.#resolve(this.#bodySchema(operationId))
    const body: Record<string, unknown> = {}
    for (const [name, schema] of Object.entries(
      (root.properties ?? {}) as Record<string, Schema>,
    )) {
      body[name] = this.#sample(schema, 0)
    }
    for (const [name, value] of Object.entries(overrides)) {
      if (value === undefined) delete body[name]
      else body[name] = value
    }
    return body
  }

  /** The errors of `body` against the operation's request schema (none: it is Mixpeek-shaped). */
  requestErrors(operationId: string, body: unknown): ErrorObject[] {
    const validate = this.#validator(this.#bodySchema(operationId))
    return validate(body) ? [] : [...(validate.errors ?? [])]
  }

  /**
   * Throws unless `body` passes Mixpeek's schema for `status`: a 2xx the operation's 200 schema,
   * a 422 `HTTPValidationError` (with a non-empty `detail`) and `ErrorResponse` (berth's
   * envelope, which it sends with it), any other 4xx `ErrorResponse`. The status must be one
   * the document lists for the operation, or, when `undocumented`, one it does not.
   */
  checkResponse(operationId: string, status: number, body: unknown, undocumented = false): void {
    const op = this.operation(operationId)
    const where = `${operationId} answered ${status}`
    const listed = op.responses[String(status)] !== undefined
    if (listed === undocumented) {
      throw new AssertionError({
        message: `${where}, a status Mixpeek's document ${listed ? 'lists' : 'does not list'}: ${show(body)}`,
      })
    }
    const schemas: Schema[] = []
    if (status >= 200 && status < 300) {
      const schema = op.responses['200']?.content?.['application/json']?.schema
      if (schema === undefined) throw new Error(`${operationId}: no 200 schema`)
      schemas.push(schema)
    } else if (status === 422) {
      schemas.push(this.#component('HTTPValidationError'), this.#component('ErrorResponse'))
      const detail = (body as { detail?: unknown } | null)?.detail
      if (!Array.isArray(detail) || detail.length === 0) {
        throw new AssertionError({ message: `${where} without FastAPI's detail: ${show(body)}` })
      }
    } else if (status >= 400 && status < 500) {
      schemas.push(this.#component('ErrorResponse'))
    } else {
      throw new AssertionError({ message: `${where}: ${show(body)}` })
    }
    for (const schema of schemas) {
      const validate = this.#validator(schema)
      if (!validate(body)) {
        throw new AssertionError({
          message: `${where}, which breaks Mixpeek's schema:\n${this.#explain(validate.errors)}\nbody: ${show(body)}`,
        })
      }
    }
  }

  /**
   * Calls the operation on the test app as a client generated from Mixpeek's document would,
   * checks the request against the document first and the answer after, and records the call.
   */
  async call(t: TestApp, operationId: string, call: MixpeekCall = {}): Promise<MixpeekAnswer> {
    const op = this.operation(operationId)
    const headers: Record<string, string> = {}
    if (call.key !== undefined) headers.authorization = `Bearer ${call.key}`
    if (call.namespace !== undefined) {
      this.#parameter(op, 'header', 'X-Namespace')
      headers['x-namespace'] = call.namespace
    }
    let payload: string | Buffer | undefined
    if (call.json !== undefined) {
      this.#checkBody(operationId, call.json, call.malformed === true)
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(call.json)
    } else if (call.form !== undefined) {
      this.#checkBody(
        operationId,
        { ...call.form.fields, file: 'archive' },
        call.malformed === true,
      )
      const form = multipartBody([
        // A client leaves out the fields it has no value for (None), and sends the rest as text.
        ...Object.entries(call.form.fields)
          .filter(([, value]) => value !== null && value !== undefined)
          .map(([name, value]) => ({ name, value: String(value) })),
        { name: 'file', filename: 'model.tar.gz', content: call.form.file },
      ])
      Object.assign(headers, form.headers)
      payload = form.payload
    } else if (call.emptyJson === true) {
      if (op.requestBody === undefined || op.requestBody.required === true) {
        throw new Error(`${operationId}: an empty body only where the request body is optional`)
      }
      headers['content-type'] = 'application/json'
      payload = ''
    }
    const res: LightMyRequestResponse = await t.app.server.inject({
      method: op.method,
      url: this.#url(op, call),
      headers,
      ...(payload === undefined ? {} : { payload }),
    })
    const statuses = this.exercised.get(operationId) ?? new Set<number>()
    this.exercised.set(operationId, statuses.add(res.statusCode))
    let body: unknown
    try {
      body = res.json()
    } catch {
      throw new AssertionError({
        message: `${operationId} answered ${res.statusCode}, not JSON: ${res.body}`,
      })
    }
    this.checkResponse(operationId, res.statusCode, body, call.undocumented === true)
    return { status: res.statusCode, body }
  }

  #checkBody(operationId: string, body: unknown, malformed: boolean): void {
    const errors = this.requestErrors(operationId, body)
    if (malformed && errors.length === 0) {
      throw new Error(`${operationId}: the malformed body passes Mixpeek's schema: ${show(body)}`)
    }
    if (!malformed && errors.length > 0) {
      throw new Error(
        `${operationId}: the request breaks Mixpeek's schema:\n${this.#explain(errors)}\nbody: ${show(body)}`,
      )
    }
  }

  #explain(errors: ErrorObject[] | null | undefined): string {
    return this.#ajv.errorsText(errors, { separator: '\n' })
  }

  #url(op: Operation, call: MixpeekCall): string {
    const given = call.path ?? {}
    const path = op.path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      this.#parameter(op, 'path', name)
      const value = given[name]
      if (value === undefined) throw new Error(`${op.operationId}: path parameter ${name} missing`)
      return encodeURIComponent(value)
    })
    for (const name of Object.keys(given)) this.#parameter(op, 'path', name)
    const query = new URLSearchParams()
    for (const [name, value] of Object.entries(call.query ?? {})) {
      const validate = this.#validator(this.#parameter(op, 'query', name).schema)
      if (!validate(value)) {
        throw new Error(`${op.operationId}: query ${name}=${value} breaks Mixpeek's schema`)
      }
      query.set(name, String(value))
    }
    const search = query.toString()
    return search === '' ? path : `${path}?${search}`
  }

  #parameter(op: Operation, where: Parameter['in'], name: string): Parameter {
    const found = op.parameters.find((p) => p.in === where && p.name === name)
    if (found === undefined) {
      throw new Error(`${op.operationId} has no ${where} parameter named ${name} in the document`)
    }
    return found
  }

  #bodySchema(operationId: string): Schema {
    const content = this.operation(operationId).requestBody?.content ?? {}
    const schema = Object.values(content)[0]?.schema
    if (schema === undefined) throw new Error(`${operationId} takes no request body`)
    return schema
  }

  /** A ref to a component schema: the same object each time, so its validator is compiled once. */
  #component(name: string): Schema {
    let ref = this.#components.get(name)
    if (ref === undefined) {
      ref = { $ref: `#/components/schemas/${name}` }
      this.#components.set(name, ref)
    }
    return ref
  }

  /** Compiles a schema of the document, its `#/components/…` refs pointing into the document. */
  #validator(schema: Schema): ValidateFunction {
    let validate = this.#validators.get(schema)
    if (validate === undefined) {
      validate = this.#ajv.compile(rebase(schema) as Schema)
      this.#validators.set(schema, validate)
    }
    return validate
  }

  #resolve(schema: Schema): Schema {
    if (typeof schema.$ref !== 'string') return schema
    const { $ref, ...siblings } = schema
    const name = $ref.replace('#/components/schemas/', '')
    const components = (this.#document.components as { schemas: Record<string, Schema> }).schemas
    const target = components[name]
    if (target === undefined) throw new Error(`unresolved ${$ref}`)
    return { ...this.#resolve(target), ...siblings }
  }

  #sample(raw: Schema, depth: number): unknown {
    if (depth > 8) throw new Error('the schema nests too deep to sample')
    const schema = this.#resolve(raw)
    if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0]
    if ('example' in schema) return schema.example
    if ('default' in schema) return schema.default
    if ('const' in schema) return schema.const
    if (Array.isArray(schema.enum)) return schema.enum[0]
    const branches = (schema.anyOf ?? schema.oneOf) as Schema[] | undefined
    if (branches !== undefined) {
      const chosen = branches.find((b) => b.type !== 'null') ?? branches[0]
      return chosen === undefined ? null : this.#sample(chosen, depth + 1)
    }
    switch (schema.type) {
      case 'object': {
        const value: Record<string, unknown> = {}
        const properties = (schema.properties ?? {}) as Record<string, Schema>
        for (const [name, p] of Object.entries(properties)) value[name] = this.#sample(p, depth + 1)
        return value
      }
      case 'array': {
        const items = (schema.items ?? {}) as Schema
        const count = Math.max(1, Number(schema.minItems ?? 1))
        return Array.from({ length: count }, () => this.#sample(items, depth + 1))
      }
      case 'integer':
      case 'number': {
        if (typeof schema.minimum === 'number') return schema.minimum
        if (typeof schema.exclusiveMinimum === 'number')
          return Math.floor(schema.exclusiveMinimum) + 1
        return 1
      }
      case 'boolean':
        return false
      case 'string':
        if (schema.format === 'date-time') return '2024-01-01T00:00:00Z'
        return 'x'.repeat(Math.max(1, Number(schema.minLength ?? 1)))
      case 'null':
        return null
      default:
        throw new Error(`cannot sample ${show(schema)}`)
    }
  }
}

/** The schema with its local refs made absolute, so that they resolve in the added document. */
function rebase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rebase)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k,
      k === '$ref' && typeof v === 'string' && v.startsWith('#') ? `${DOCUMENT_ID}${v}` : rebase(v),
    ]),
  )
}

function show(value: unknown): string {
  const text = JSON.stringify(value)
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text
}
