/**
 * What the client-compatibility routes cost over a model's own endpoint: the same texts through
 * the same embedding model by its endpoint's task body, Mixpeek's `POST /v1/inference`, OpenAI's
 * `POST /v1/embeddings` (float and base64) and the Open Inference Protocol with a `BYTES` input,
 * at concurrency 1, over real HTTP, interleaved in rounds in one run.
 *
 *   npm run bench:client-routes -- [iterations per round]     (default: 1000)
 *
 * berth runs in this process (createApp + listen on 127.0.0.1), its runner a child process as in
 * production; the model is the tiny HuggingFace embedder of examples/ (a token table, mean
 * pooling, normalised), so the routes' own cost is what shows, not the model's.
 */
import { readdir, readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { createApp } from '../src/app.js'
import { loadConfig } from '../src/config/load-config.js'
import { createLogger } from '../src/observability/logger.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { REPO_ROOT } from '../test/helpers/repo.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { expectOk, httpClient } from './http-client.js'

const KEY = 'sk_bench_client_routes_0123456789'
const ROUNDS = 5
const WARMUP = 200
const TEXTS = ['Hello world!', 'the model is serving on cpu']
const iterations = Number(process.argv[2] ?? 1000)

interface Mode {
  readonly label: string
  readonly path: string
  readonly body: unknown
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function exampleFiles(dir: string): Promise<Record<string, Buffer>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  const files: Record<string, Buffer> = {}
  for (const e of entries.filter((entry) => entry.isFile())) {
    const path = join(e.parentPath, e.name)
    files[relative(dir, path)] = await readFile(path)
  }
  return files
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-')
  const config = loadConfig({
    BERTH_DATA_DIR: dir.path,
    BERTH_BOOTSTRAP_API_KEY: KEY,
    BERTH_PORT: '0',
    BERTH_LOG_LEVEL: 'warn',
  })
  const app = await createApp(config, { logger: createLogger('warn') })
  await app.server.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.server.address() as AddressInfo
  const client = httpClient(port, 1)
  const auth = { authorization: `Bearer ${KEY}` }
  const json = (value: unknown) => Buffer.from(JSON.stringify(value))
  try {
    expectOk(
      await client.post('/v1/namespaces', json({ namespace_name: 'bench' }), {
        ...auth,
        'content-type': 'application/json',
      }),
    )
    const archive = await tarGzOf(await exampleFiles(join(REPO_ROOT, 'examples/tiny-embedder')))
    const form = multipartBody([
      { name: 'name', value: 'embedder' },
      { name: 'version', value: '1.0.0' },
      { name: 'model_format', value: 'huggingface' },
      { name: 'task_type', value: 'embedding' },
      { name: 'memory_gb', value: '0.5' },
      { name: 'file', filename: 'model.tar.gz', content: archive },
    ])
    expectOk(
      await client.post('/v1/namespaces/bench/models?wait=true', form.payload, {
        ...auth,
        ...form.headers,
      }),
    )
    const modes: Mode[] = [
      {
        label: 'endpoint, task body {"input"}',
        path: '/v1/namespaces/bench/models/embedder_1_0_0/infer',
        body: { input: TEXTS },
      },
      {
        label: 'Mixpeek POST /v1/inference',
        path: '/v1/inference',
        body: { inference_name: 'embedder_1_0_0', inputs: { texts: TEXTS } },
      },
      {
        label: 'OpenAI POST /v1/embeddings (float)',
        path: '/v1/embeddings',
        body: { model: 'bench/embedder_1_0_0', input: TEXTS, encoding_format: 'float' },
      },
      {
        label: 'OpenAI POST /v1/embeddings (base64)',
        path: '/v1/embeddings',
        body: { model: 'bench/embedder_1_0_0', input: TEXTS, encoding_format: 'base64' },
      },
      {
        label: 'OIP /v2 infer, BYTES input',
        path: '/v2/models/embedder/infer',
        body: { inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: TEXTS }] },
      },
    ]
    const headers = { ...auth, 'content-type': 'application/json', 'x-namespace': 'bench' }
    const times = new Map<string, number[]>(modes.map((m) => [m.label, []]))
    for (const mode of modes) {
      const body = json(mode.body)
      for (let i = 0; i < WARMUP; i++) expectOk(await client.post(mode.path, body, headers))
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of modes) {
        const body = json(mode.body)
        const list = times.get(mode.label) as number[]
        for (let i = 0; i < iterations; i++) {
          const started = performance.now()
          expectOk(await client.post(mode.path, body, headers))
          list.push(performance.now() - started)
        }
      }
    }
    const base = percentile(
      [...(times.get(modes[0]?.label ?? '') ?? [])].sort((a, b) => a - b),
      50,
    )
    console.log(
      `${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}; ${ROUNDS} rounds × ${iterations} requests of ${TEXTS.length} texts at c=1`,
    )
    console.log('| route | p50 ms | p99 ms | p50 vs endpoint |')
    console.log('| --- | --- | --- | --- |')
    for (const mode of modes) {
      const sorted = [...(times.get(mode.label) ?? [])].sort((a, b) => a - b)
      const p50 = percentile(sorted, 50)
      console.log(
        `| ${mode.label} | ${p50.toFixed(3)} | ${percentile(sorted, 99).toFixed(3)} | ${(p50 / base).toFixed(2)}× |`,
      )
    }
  } finally {
    client.close()
    await app.close()
    await dir.remove()
  }
}

await main()
