import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'
import { startTestApp, type TestApp } from '../helpers/test-app.js'

interface Media {
  schema?: Record<string, unknown>
  example?: unknown
  examples?: Record<string, { value: unknown }>
}
interface Operation {
  requestBody?: { content: Record<string, Media> }
  responses: Record<string, { content?: Record<string, Media> }>
}
interface Document {
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, Record<string, unknown>> }
}

/**
 * Every operation of the served OpenAPI document shows an example request body (each content
 * type it takes) and an example answer, and every example is valid by its own schema: a reader
 * or a client generator sees what to send and what comes back, and an example cannot drift from
 * the schema it illustrates.
 */
describe('OpenAPI examples', () => {
  let t: TestApp
  let doc: Document
  before(async () => {
    t = await startTestApp()
    doc = (await t.request({ method: 'GET', url: '/openapi.json' })).json()
  })
  after(() => t.close())

  /** The examples of a media type: its own, or its schema's (followed through a $ref). */
  const examplesOf = (media: Media): unknown[] => {
    if (media.example !== undefined) return [media.example]
    if (media.examples !== undefined) return Object.values(media.examples).map((e) => e.value)
    let schema = media.schema ?? {}
    const ref = schema.$ref
    if (typeof ref === 'string') schema = doc.components.schemas[ref.split('/').pop() ?? ''] ?? {}
    return Array.isArray(schema.examples) ? schema.examples : []
  }
  const operations = () =>
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ name: `${method} ${path}`, op })),
    )

  it('shows an example of every request body and every answer', () => {
    const missing: string[] = []
    for (const { name, op } of operations()) {
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (examplesOf(media).length === 0) missing.push(`${name} request ${type}`)
      }
      const ok = op.responses['200']?.content ?? {}
      if (Object.keys(ok).length === 0) missing.push(`${name} answer`)
      for (const [type, media] of Object.entries(ok)) {
        if (examplesOf(media).length === 0) missing.push(`${name} answer ${type}`)
      }
    }
    assert.deepEqual(missing, [])
  })

  it('has examples that are valid by their schemas', () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true })
    addFormats.default(ajv)
    ajv.addSchema({ $id: 'berth', components: doc.components })
    const invalid: string[] = []
    const check = (where: string, media: Media) => {
      if (media.schema === undefined) return
      const schema = JSON.parse(
        JSON.stringify(media.schema).replaceAll('"#/components/', '"berth#/components/'),
      )
      const validate = ajv.compile(schema)
      for (const example of examplesOf(media)) {
        if (!validate(example)) invalid.push(`${where}: ${ajv.errorsText(validate.errors)}`)
      }
    }
    for (const { name, op } of operations()) {
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        check(`${name} request ${type}`, media)
      }
      for (const [type, media] of Object.entries(op.responses['200']?.content ?? {})) {
        check(`${name} answer ${type}`, media)
      }
    }
    assert.deepEqual(invalid, [])
  })
})
