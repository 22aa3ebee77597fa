import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Validator } from '@seriousme/openapi-schema-validator'
import { readRepoFile } from '../helpers/repo.js'
import { startTestApp, type TestApp } from '../helpers/test-app.js'

type SchemaObject = {
  type?: string | string[]
  anyOf?: SchemaObject[]
  enum?: unknown[]
  default?: unknown
  format?: string
  title?: string
  description?: string
  required?: string[]
  properties?: Record<string, SchemaObject>
}

/** `{type: [a, b]}` and `{anyOf: [{type: a}, {type: b}]}` say the same thing. */
function typesOf(schema: SchemaObject): string[] {
  if (schema.anyOf) return schema.anyOf.flatMap(typesOf).sort()
  return (Array.isArray(schema.type) ? [...schema.type] : [schema.type ?? 'any']).sort()
}

/** A body's or answer's schema by media type (its examples are checked on their own). */
function schemasOf(body: unknown): Record<string, unknown> {
  const content = (body as { content?: Record<string, { schema?: unknown }> } | undefined)?.content
  return Object.fromEntries(Object.entries(content ?? {}).map(([type, m]) => [type, m.schema]))
}

type Operation = {
  security?: unknown[]
  responses?: Record<string, unknown>
  requestBody?: unknown
}

describe('OpenAPI document', () => {
  let t: TestApp
  let doc: {
    openapi: string
    paths: Record<string, Record<string, Operation>>
    components: { schemas: Record<string, unknown> }
  }
  before(async () => {
    t = await startTestApp()
    const res = await t.request({ method: 'GET', url: '/openapi.json' })
    assert.equal(res.statusCode, 200)
    doc = res.json()
  })
  after(() => t.close())

  it('is a valid OpenAPI 3.1 document', async () => {
    assert.equal(doc.openapi, '3.1.0')
    const result = await new Validator().validate(structuredClone(doc))
    assert.equal(result.valid, true, JSON.stringify(result.errors))
  })

  /** berth's presigned upload URL: the one /v1 route without a bearer key. */
  const SIGNED_URL_ROUTES = new Set(['put /v1/models/uploads/{upload_id}/archive'])

  it('documents every /v1 route with bearer auth, and responses with the error envelope', () => {
    const expected = [
      '/v1/namespaces',
      '/v1/namespaces/{namespace}',
      '/v1/namespaces/{namespace_id}/models',
      '/v1/namespaces/{namespace_id}/models/{model_id}',
      '/healthz',
      '/metrics',
    ]
    for (const path of expected) assert.ok(doc.paths[path], `missing ${path}`)
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        assert.ok(op.responses?.['200'], `${method} ${path} has no 200 schema`)
        if (!path.startsWith('/v1')) continue
        if (SIGNED_URL_ROUTES.has(`${method} ${path}`)) {
          // Authorised by the URL's signature instead: 403 when it is wrong or expired.
          assert.equal(op.security, undefined, `${method} ${path}`)
          assert.ok(op.responses?.['403'], `${method} ${path} has no 403`)
          continue
        }
        assert.deepEqual(op.security, [{ bearerAuth: [] }], `${method} ${path}`)
        // The OpenAI-compatible route answers errors in OpenAI's shape, so its clients read them.
        const envelope = path === '/v1/embeddings' ? 'OpenAiError' : 'ErrorResponse'
        assert.deepEqual(
          (op.responses?.['401'] as { content?: unknown } | undefined)?.content,
          { 'application/json': { schema: { $ref: `#/components/schemas/${envelope}` } } },
          `${method} ${path}`,
        )
      }
    }
    assert.deepEqual(schemasOf(doc.paths['/v1/namespaces']?.post?.requestBody), {
      'application/json': { $ref: '#/components/schemas/CreateNamespaceRequest' },
    })
  })

  it('resolves every $ref and keeps no unused component', () => {
    const text = JSON.stringify(doc)
    const refs = new Set([...text.matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]))
    for (const ref of refs)
      assert.ok(ref !== undefined && ref in doc.components.schemas, `dangling ${ref}`)
    assert.deepEqual(Object.keys(doc.components.schemas).sort(), [...refs].sort())
    assert.ok(!Object.keys(doc.components.schemas).some((n) => n.endsWith('Input')))
  })

  it("agrees with Mixpeek's upload contract: fields, types, enums, defaults, required", async () => {
    const mixpeek = JSON.parse(await readRepoFile('test/fixtures/mixpeek-upload-schemas.json'))
    const upload = doc.paths['/v1/namespaces/{namespace_id}/models']?.post as Operation & {
      operationId?: string
      parameters?: Array<{ name: string; in: string }>
    }
    assert.equal(upload.operationId, 'upload_model_v1_namespaces__namespace_id__models_post')
    // Mixpeek's one parameter, plus berth's documented `?wait=true` (docs/http-api.md).
    assert.deepEqual(upload.parameters?.map((p) => `${p.in}:${p.name}`).sort(), [
      'path:namespace_id',
      'query:wait',
    ])
    const bodyName = 'Body_upload_model_v1_namespaces__namespace_id__models_post'
    assert.deepEqual(schemasOf(upload.requestBody), {
      'multipart/form-data': { $ref: `#/components/schemas/${bodyName}` },
    })
    assert.deepEqual(schemasOf(upload.responses?.['200']), {
      'application/json': { $ref: '#/components/schemas/ModelUploadResponse' },
    })
    for (const name of [bodyName, 'ModelUploadResponse']) {
      const theirs = mixpeek[name] as SchemaObject
      const ours = doc.components.schemas[name] as SchemaObject
      assert.deepEqual([...(ours.required ?? [])].sort(), [...(theirs.required ?? [])].sort(), name)
      for (const [field, expected] of Object.entries(theirs.properties ?? {})) {
        const actual = ours.properties?.[field]
        assert.ok(actual, `${name}.${field} is missing`)
        assert.deepEqual(typesOf(actual), typesOf(expected), `${name}.${field} type`)
        for (const key of ['enum', 'default', 'format', 'title', 'description'] as const) {
          assert.deepEqual(actual[key], expected[key], `${name}.${field} ${key}`)
        }
      }
      // berth adds only its documented extra fields.
      const extra = Object.keys(ours.properties ?? {}).filter(
        (f) => !(f in (theirs.properties ?? {})),
      )
      assert.deepEqual(
        extra,
        name === bodyName
          ? [
              'deploy',
              'load_policy',
              'idle_timeout_s',
              'node_selector',
              'max_batch_size',
              'max_queue_delay_us',
              'replicas',
            ]
          : ['deployment'],
        name,
      )
    }
  })

  it('hides its own routes and serves the browsable docs', async () => {
    assert.equal(doc.paths['/openapi.json'], undefined)
    assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith('/docs')))
    const page = await t.request({ method: 'GET', url: '/docs/' })
    assert.equal(page.statusCode, 200)
    assert.match(String(page.headers['content-type']), /text\/html/)
    // berth's page, not stock Swagger UI's.
    assert.match(page.body, /<title>berth API<\/title>/)
  })
})
