import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel, tokenEncoderModel } from '../fixtures/onnx-models.js'
import { f32, safetensorsBytes } from '../fixtures/safetensors.js'
import { DIMS, SENTENCE_TRANSFORMERS, textModelFiles } from '../fixtures/text-models.js'
import { tinyVocab } from '../fixtures/tokenizers.js'
import {
  type DocExample,
  type DocServer,
  docExamples,
  jsonDifferences,
  startDocServer,
  TRIMMED,
  textDifferences,
} from '../helpers/doc-examples.js'
import { REPO_ROOT, readRepoFile } from '../helpers/repo.js'

/** Every route the server serves, as `METHOD /path` of its OpenAPI document. */
async function servedRoutes(server: DocServer): Promise<string[]> {
  const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, unknown>>
  }
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
  )
}

/** `/v1/namespaces/{namespace}` as a pattern matching a concrete URL path. */
function routePattern(route: string): { method: string; path: RegExp } {
  const [method, path] = route.split(' ') as [string, string]
  const body = path.replace(/\{[^}]+\}/g, '[^/?"\\s]+').replace(/\//g, '\\/')
  return { method, path: new RegExp(`^${body}$`) }
}

/** The method and URL paths a documented command calls (curl's -X, or GET; $VAR paths named). */
function calls(example: DocExample): { method: string; path: string }[] {
  const found: { method: string; path: string }[] = []
  for (const command of example.command.split(/\n(?!\s)/)) {
    if (!command.includes('curl ')) continue
    const method = /-X (\w+)/.exec(command)?.[1] ?? 'GET'
    for (const m of command.matchAll(/http:\/\/127\.0\.0\.1:8080(\/[^?"'\s]*)/g)) {
      found.push({ method, path: m[1] as string })
    }
    // The presigned URL is berth's PUT …/archive route.
    if (command.includes('"$PRESIGNED_URL"')) {
      found.push({ method, path: '/v1/models/uploads/$UPLOAD_ID/archive' })
    }
  }
  return found
}

/** The example models under examples/ are the fixtures, byte for byte (JSON by content). */
describe('the example models the HTTP API page uses', () => {
  it('are the fixture models', async () => {
    const vocab = tinyVocab()
    const expected: Record<string, Buffer | string> = {
      'tiny-mlp/model.onnx': mlpModel(4, 8, 3, 7),
      'tiny-weights/model.safetensors': safetensorsBytes({
        'encoder.weight': f32([2, 3]),
        'encoder.bias': f32([3]),
      }),
      ...Object.fromEntries(
        Object.entries(
          textModelFiles(vocab, tokenEncoderModel(vocab.length, DIMS), {}, SENTENCE_TRANSFORMERS),
        ).map(([path, content]) => [`tiny-embedder/${path}`, content]),
      ),
    }
    const root = join(REPO_ROOT, 'examples')
    const entries = await readdir(root, { recursive: true, withFileTypes: true })
    const present = entries
      .filter((e) => e.isFile())
      .map((e) => relative(root, join(e.parentPath, e.name)))
      .sort()
    assert.deepEqual(present, Object.keys(expected).sort())
    for (const [path, content] of Object.entries(expected)) {
      const actual = await readFile(join(root, path))
      if (path.endsWith('.json')) {
        // The formatter may lay the committed JSON out differently; its content is what counts.
        assert.deepEqual(JSON.parse(actual.toString('utf8')), JSON.parse(String(content)), path)
      } else {
        assert.ok(actual.equals(Buffer.from(content)), `${path} is not the fixture`)
      }
    }
  })
})

describe('docs/http-api.md examples', () => {
  let server: DocServer
  let workDir: string
  let examples: DocExample[]
  before(async () => {
    examples = docExamples(await readRepoFile('docs/http-api.md'))
    workDir = await mkdtemp(join(tmpdir(), 'berth-http-api-'))
    server = await startDocServer(workDir)
  })
  after(async () => {
    await server.close()
    await rm(workDir, { recursive: true, force: true })
  })

  it('compares answers by value, volatile keys by shape, trimmed arrays by their prefix', () => {
    assert.deepEqual(
      jsonDifferences(
        { n: 1, ids: ['ns_0123456789abcdef0123'] },
        { n: 1, ids: ['ns_aaaaaaaaaaaaaaaaaaaa'] },
      ),
      [],
    )
    assert.deepEqual(jsonDifferences({ n: 1 }, { n: 2 }), ['n: documented 1, got 2'])
    assert.deepEqual(jsonDifferences({ latency_ms: 1.5 }, { latency_ms: 9 }), [])
    assert.equal(jsonDifferences({ latency_ms: 1.5 }, { latency_ms: null }).length, 1)
    assert.deepEqual(jsonDifferences([1, 2, TRIMMED], [1, 2, 3, 4]), [])
    assert.equal(jsonDifferences([1, 3, TRIMMED], [1, 2, 3, 4]).length, 1)
    assert.equal(jsonDifferences([1, 2], [1, 2, 3]).length, 1)
    assert.equal(jsonDifferences({ a: 1 }, { a: 1, b: 2 }).length, 1)
    assert.deepEqual(textDifferences('x 1\n', 'x 1'), [])
    assert.equal(textDifferences('x 1\n', 'x 2\n').length, 1)
  })

  it('documents every route the server serves with a curl example', async () => {
    const routes = (await servedRoutes(server)).map((route) => ({ route, ...routePattern(route) }))
    const called = examples.flatMap(calls)
    const missing = routes
      .filter((r) => !called.some((c) => c.method === r.method && r.path.test(c.path)))
      .map((r) => r.route)
    assert.deepEqual(missing, [], 'routes without a curl example in docs/http-api.md')
  })

  it('answers every example as documented, in the order of the page', async () => {
    assert.ok(examples.length > 40, `only ${examples.length} examples found`)
    for (const example of examples) {
      const where = `docs/http-api.md line ${example.line}:\n${example.command}`
      let out: string
      try {
        out = await server.run(example.command)
      } catch (err) {
        assert.fail(`${where}\nfailed: ${String(err)}`)
      }
      if (example.kind === 'text') {
        assert.deepEqual(textDifferences(example.expected, out), [], where)
        continue
      }
      let actual: unknown
      try {
        actual = JSON.parse(out)
      } catch {
        assert.fail(`${where}\nanswered no JSON: ${out}`)
      }
      server.carry(actual)
      const documented: unknown = JSON.parse(example.expected)
      assert.deepEqual(jsonDifferences(documented, actual), [], where)
    }
  })
})
