/**
 * Throughput benchmark: batch-1 requests at concurrency 1, 16 and 64 against
 *   - raw onnxruntime-node `session.run` in this process, one request after another (the floor
 *     a server adds to; concurrency does not apply);
 *   - berth (`berth serve` as a child process, JSON tensors) with dynamic batching (the default)
 *     and without (`max_batch_size` 1);
 *   - a naive Fastify + onnxruntime-node server running the model on its event loop (what a user
 *     would write by hand; bench/naive-server.ts, also a child process).
 * Same model everywhere: an MLP 512→2048→2048→2048→16 (dynamic batch), one intra-op thread.
 *
 *   npm run bench:throughput -- [seconds per cell]     (default: 5)
 */
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'
import { deepMlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'

const KEY = 'sk_bench_throughput_key_0123456789'
const DIMS = [512, 2048, 2048, 2048, 16]
const CONCURRENCY = [1, 16, 64]
const NAIVE = fileURLToPath(new URL('./naive-server.js', import.meta.url))
const seconds = Number(process.argv[2] ?? 5)

interface Cell {
  readonly rps: number
  readonly p50: number
  readonly p99: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/** Keeps `concurrency` requests in flight for `seconds`; counts answers and their latency. */
async function load(
  send: () => Promise<void>,
  concurrency: number,
  durationMs: number,
): Promise<Cell> {
  const times: number[] = []
  const end = performance.now() + durationMs
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now()
        await send()
        times.push(performance.now() - t0)
      }
    }),
  )
  times.sort((a, b) => a - b)
  return {
    rps: times.length / (durationMs / 1000),
    p50: percentile(times, 50),
    p99: percentile(times, 99),
  }
}

function poster(port: number, path: string, headers: Record<string, string>, body: Buffer) {
  const agent = new Agent({ keepAlive: true, maxSockets: 128 })
  const send = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': String(body.length),
          },
        },
        (res) => {
          res.resume()
          res.on('end', () =>
            res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  return { send, close: () => agent.destroy() }
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-throughput-')
  const model = deepMlpModel(DIMS, 1)
  const modelPath = join(dir.path, 'model.onnx')
  await writeFile(modelPath, model)
  const x = Array.from({ length: DIMS[0] as number }, (_, i) => Math.sin(i))
  const body = Buffer.from(
    JSON.stringify({ inputs: [{ name: 'x', shape: [1, DIMS[0]], datatype: 'FP32', data: x }] }),
  )
  const durationMs = seconds * 1000
  const rows: Array<[string, ...string[]]> = []
  const cells = (results: Cell[]) =>
    results.map((r) => `${r.rps.toFixed(0)} (p50 ${r.p50.toFixed(1)}, p99 ${r.p99.toFixed(1)})`)

  // Raw, sequential, in-process.
  const session = await ort.InferenceSession.create(modelPath, {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  })
  const tensor = new ort.Tensor('float32', Float32Array.from(x), [1, DIMS[0] as number])
  for (let i = 0; i < 50; i++) await session.run({ x: tensor })
  const raw = await load(
    async () => {
      await session.run({ x: tensor })
    },
    1,
    durationMs,
  )
  await session.release()
  rows.push(['raw `session.run`, sequential, in-process', ...cells([raw, raw, raw])])

  // berth, with and without dynamic batching.
  const server = await startBerthServe({
    BERTH_DATA_DIR: join(dir.path, 'data'),
    BERTH_BOOTSTRAP_API_KEY: KEY,
    BERTH_NODE_CPUS: '2',
  })
  try {
    const auth = { authorization: `Bearer ${KEY}` }
    await fetch(`${server.url}/v1/namespaces`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'bench' }),
    })
    const archive = await tarGzOf({ 'model.onnx': model })
    for (const [name, batch] of [
      ['batched', undefined],
      ['unbatched', '1'],
    ] as const) {
      const { payload, headers } = multipartBody([
        { name: 'name', value: `mlp-${name}` },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '1' },
        ...(batch === undefined ? [] : [{ name: 'max_batch_size', value: batch }]),
        { name: 'file', filename: 'm.tar.gz', content: archive },
      ])
      const res = await fetch(`${server.url}/v1/namespaces/bench/models?wait=true`, {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: payload,
      })
      const answer = (await res.json()) as { deployment_status?: string }
      if (answer.deployment_status !== 'deployed') throw new Error(JSON.stringify(answer))
    }
    const port = Number(new URL(server.url).port)
    for (const name of ['batched', 'unbatched']) {
      const client = poster(port, `/v1/namespaces/bench/models/mlp-${name}_1_0_0/infer`, auth, body)
      for (let i = 0; i < 50; i++) await client.send()
      const results: Cell[] = []
      for (const c of CONCURRENCY) results.push(await load(client.send, c, durationMs))
      client.close()
      rows.push([
        name === 'batched' ? 'berth, dynamic batching (default)' : 'berth, `max_batch_size` 1',
        ...cells(results),
      ])
    }
  } finally {
    await server.stop()
  }

  // The naive server.
  const naive = spawn(process.execPath, [NAIVE, modelPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      naive.stdout.on('data', (chunk: Buffer) => {
        const match = /listening (\d+)/.exec(String(chunk))
        if (match?.[1] !== undefined) resolve(Number(match[1]))
      })
      naive.once('exit', () => reject(new Error('the naive server exited')))
    })
    const client = poster(port, '/infer', {}, body)
    for (let i = 0; i < 50; i++) await client.send()
    const results: Cell[] = []
    for (const c of CONCURRENCY) results.push(await load(client.send, c, durationMs))
    client.close()
    rows.push(['naive Fastify + onnxruntime-node, on the event loop', ...cells(results)])
  } finally {
    naive.kill('SIGKILL')
  }

  console.log(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
  )
  console.log(`Model: MLP ${DIMS.join('→')}, batch-1 JSON requests, ${seconds} s per cell\n`)
  console.log('| Server | c=1 req/s (ms) | c=16 req/s (ms) | c=64 req/s (ms) |')
  console.log('| --- | --- | --- | --- |')
  for (const row of rows) console.log(`| ${row.join(' | ')} |`)
  await dir.remove()
}

await main()
