/**
 * Small models, measured side by side in one run (issue 18's goals):
 *   - a small CNN on 28×28 images, batch-1 requests in JSON and with binary tensors, against
 *     berth (`berth serve`, a child process, dynamic batching by default) and a plain
 *     `node:http` + onnxruntime-node server running the model in its own process
 *     (bench/plain-server.ts, also a child): p50 at concurrency 1, req/s at 64;
 *   - CPU time per request for a tiny MLP (16→32→4) with binary tensors: berth's server and
 *     runner processes together, from /proc/PID/stat over N requests, at concurrency 1 and 64;
 *     beside the model's own compute (raw `session.run` in this process), a no-op HTTP request
 *     to the same server (`GET /healthz`), a no-op `GET` on the plain server (node:http alone),
 *     and the plain server's whole cost per request.
 * The load generator runs in this process and shares the machine's cores with the servers.
 *
 *   npm run bench:small-models -- [seconds per cell] [requests for CPU]    (default: 5, 10000)
 *   BENCH_CPU_PROFILE=/tmp/prof npm run bench:small-models     (berth's server profiled too)
 *   BENCH_BERTH_BIN=/tmp/before/bin/berth …    (another build of berth measured: berth-under-test.ts)
 */
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'
import { mlpModel, smallCnnModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { binaryBody } from '../test/helpers/inference.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { BERTH_UNDER_TEST, berthUnderTestLine } from './berth-under-test.js'
import { expectOk, httpClient } from './http-client.js'
import { type Cell, load, repeat } from './load.js'
import { cpuMicros } from './proc-cpu.js'
import { childrenOf } from './proc-memory.js'

const KEY = 'sk_bench_small_models_key_0123456789'
const PLAIN = fileURLToPath(new URL('./plain-server.js', import.meta.url))
const seconds = Number(process.argv[2] ?? 5)
const cpuRequests = Number(process.argv[3] ?? 10_000)

/** A child server, its port, and a way to stop it; its output after "listening" is dropped. */
async function startServer(
  args: string[],
  env: Record<string, string>,
  listening: RegExp,
): Promise<{ pid: number; port: number; stop: () => Promise<void> }> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let seen = ''
  const port = await new Promise<number>((resolve, reject) => {
    const look = (chunk: Buffer) => {
      seen = (seen + String(chunk)).slice(-4096)
      const match = listening.exec(seen)
      if (match?.[1] !== undefined) resolve(Number(match[1]))
    }
    child.stdout.on('data', look)
    child.stderr.on('data', look)
    child.once('exit', () => reject(new Error(`exited before listening:\n${seen}`)))
    setTimeout(() => reject(new Error(`did not listen within 30 s:\n${seen}`)), 30_000).unref()
  }).catch((err: unknown) => {
    child.kill('SIGKILL')
    throw err
  })
  // Read on, and drop: a full pipe would block the server's logging.
  child.stdout.removeAllListeners('data').resume()
  child.stderr.removeAllListeners('data').resume()
  // SIGTERM: berth shuts down in order (and writes its CPU profile when asked for one).
  const stop = async () => {
    if (child.exitCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    await exited
    clearTimeout(timer)
  }
  return { pid: child.pid as number, port, stop }
}

/** CPU µs per request that each group of processes spends on `count` sends, `concurrency` at a time. */
async function cpuPerRequest(
  groups: () => Promise<number[][]>,
  send: () => Promise<void>,
  count: number,
  concurrency: number,
): Promise<number[]> {
  await repeat(send, 500, concurrency)
  const watched = await groups()
  const before = await Promise.all(watched.map(cpuMicros))
  await repeat(send, count, concurrency)
  const after = await Promise.all(watched.map(cpuMicros))
  return after.map((micros, i) => (micros - (before[i] ?? 0)) / count)
}

/** CPU per request, in µs, that `server` spends on `GET /healthz` (a no-op for either server). */
async function noopCpu(
  server: { pid: number; port: number },
  concurrency: number,
): Promise<number> {
  const probes = httpClient(server.port, 128)
  try {
    const [micros = 0] = await cpuPerRequest(
      async () => [[server.pid]],
      async () => {
        expectOk(await probes.get('/healthz'))
      },
      cpuRequests,
      concurrency,
    )
    return micros
  } finally {
    probes.close()
  }
}

function jsonRequest(shape: number[], data: Float32Array): { body: Buffer; headers: Headers } {
  const inputs = [{ name: 'x', shape, datatype: 'FP32', data: Array.from(data) }]
  return {
    body: Buffer.from(JSON.stringify({ inputs })),
    headers: { 'content-type': 'application/json' },
  }
}

function binaryRequest(shape: number[], data: Float32Array): { body: Buffer; headers: Headers } {
  return binaryBody(
    {
      inputs: [
        { name: 'x', shape, datatype: 'FP32', parameters: { binary_data_size: data.byteLength } },
      ],
      parameters: { binary_data_output: true },
    },
    Buffer.from(data.buffer),
  )
}

type Headers = Record<string, string>

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-small-')
  const cnn = smallCnnModel(1)
  const mlp = mlpModel(16, 32, 4, 1)
  await writeFile(join(dir.path, 'cnn.onnx'), cnn)
  await writeFile(join(dir.path, 'mlp.onnx'), mlp)
  const image = Float32Array.from({ length: 784 }, (_, i) => Math.cos(i))
  const features = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i))
  const durationMs = seconds * 1000

  // BENCH_CPU_PROFILE=DIR: berth's server writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_CPU_PROFILE
  const berth = await startServer(
    [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), BERTH_UNDER_TEST, 'serve'],
    {
      PATH: process.env.PATH ?? '',
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: KEY,
      BERTH_PORT: '0',
      BERTH_LOG_FORMAT: 'json',
    },
    /listening at http:\/\/127\.0\.0\.1:(\d+)/,
  )
  const plainCnn = await startServer(
    [PLAIN, join(dir.path, 'cnn.onnx')],
    { PATH: process.env.PATH ?? '' },
    /listening (\d+)/,
  )
  const plainMlp = await startServer(
    [PLAIN, join(dir.path, 'mlp.onnx')],
    { PATH: process.env.PATH ?? '' },
    /listening (\d+)/,
  )
  const auth = { authorization: `Bearer ${KEY}` }
  try {
    const api = `http://127.0.0.1:${berth.port}`
    await fetch(`${api}/v1/namespaces`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'bench' }),
    })
    const endpoints = new Map<string, string>()
    for (const [name, model] of [
      ['cnn', cnn],
      ['mlp', mlp],
    ] as const) {
      const { payload, headers } = multipartBody([
        { name: 'name', value: name },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '1' },
        { name: 'file', filename: 'm.tar.gz', content: await tarGzOf({ 'model.onnx': model }) },
      ])
      const res = await fetch(`${api}/v1/namespaces/bench/models?wait=true`, {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: payload,
      })
      const answer = (await res.json()) as { deployment_status?: string; endpoint?: string }
      if (answer.deployment_status !== 'deployed') throw new Error(JSON.stringify(answer))
      // The endpoint as berth gives it (the namespace by id), as clients call it.
      endpoints.set(name, new URL(answer.endpoint as string).pathname)
    }
    const sender = (port: number, path: string, request: { body: Buffer; headers: Headers }) => {
      const client = httpClient(port, 128)
      return {
        send: async () => {
          expectOk(await client.post(path, request.body, { ...auth, ...request.headers }))
        },
        close: client.close,
      }
    }
    const berthPath = (name: string) => endpoints.get(name) as string

    console.log(
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
    )
    console.log(berthUnderTestLine())
    console.log(`${seconds} s per cell; CPU over ${cpuRequests} requests\n`)

    // The small CNN: latency at c=1, throughput at c=64.
    console.log('Small CNN 28×28, batch-1 requests:\n')
    console.log(
      '| Requests | plain c=1 p50 (ms) | berth c=1 p50 (ms) | berth / plain | plain c=64 req/s | berth c=64 req/s | berth / plain |',
    )
    console.log('| --- | --- | --- | --- | --- | --- | --- |')
    for (const [label, request] of [
      ['JSON', jsonRequest([1, 1, 28, 28], image)],
      ['binary tensors', binaryRequest([1, 1, 28, 28], image)],
    ] as const) {
      const cells: Record<string, Cell[]> = {}
      for (const [server, port, path] of [
        ['plain', plainCnn.port, '/infer'],
        ['berth', berth.port, berthPath('cnn')],
      ] as const) {
        const client = sender(port, path, request)
        // Warmed for as long as a cell lasts, not for a count: berth (three processes, more code
        // to optimize) takes seconds to reach its pace, and 200 requests left its first cell cold.
        await load(client.send, 8, durationMs)
        cells[server] = [
          await load(client.send, 1, durationMs),
          await load(client.send, 64, durationMs),
        ]
        client.close()
      }
      const [p1, p64] = cells.plain as Cell[]
      const [b1, b64] = cells.berth as Cell[]
      if (!p1 || !p64 || !b1 || !b64) throw new Error('a cell is missing')
      console.log(
        `| ${label} | ${p1.p50.toFixed(3)} | ${b1.p50.toFixed(3)} | ${(b1.p50 / p1.p50).toFixed(2)}× | ${p64.rps.toFixed(0)} | ${b64.rps.toFixed(0)} | ${(b64.rps / p64.rps).toFixed(2)}× |`,
      )
    }

    // CPU per request: the tiny MLP, binary tensors.
    const session = await ort.InferenceSession.create(join(dir.path, 'mlp.onnx'), {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
    })
    const feeds = { x: new ort.Tensor('float32', features, [1, 16]) }
    for (let i = 0; i < 500; i++) await session.run(feeds)
    const usage = process.cpuUsage()
    for (let i = 0; i < cpuRequests; i++) await session.run(feeds)
    const spent = process.cpuUsage(usage)
    const rawMicros = (spent.user + spent.system) / cpuRequests
    await session.release()

    const berthPids = async () => [[berth.pid], await childrenOf(berth.pid)]
    const mlpRequest = binaryRequest([1, 16], features)
    console.log('\nCPU time per request (µs), tiny MLP 16→32→4, binary tensors:\n')
    console.log(
      '| Concurrency | berth: server + runners | server | runners | berth less the model | `GET /healthz` on berth | `GET` on the plain server | plain server, whole | model alone (raw `session.run`) |',
    )
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const concurrency of [1, 64]) {
      const toBerth = sender(berth.port, berthPath('mlp'), mlpRequest)
      const [server = 0, runners = 0] = await cpuPerRequest(
        berthPids,
        toBerth.send,
        cpuRequests,
        concurrency,
      )
      const berthCpu = server + runners
      toBerth.close()
      const noop = await noopCpu(berth, concurrency)
      const plainNoop = await noopCpu(plainMlp, concurrency)
      const toPlain = sender(plainMlp.port, '/infer', mlpRequest)
      const [plainCpu = 0] = await cpuPerRequest(
        async () => [[plainMlp.pid]],
        toPlain.send,
        cpuRequests,
        concurrency,
      )
      toPlain.close()
      console.log(
        `| ${concurrency} | ${berthCpu.toFixed(0)} | ${server.toFixed(0)} | ${runners.toFixed(0)} | ${(berthCpu - rawMicros).toFixed(0)} | ${noop.toFixed(0)} | ${plainNoop.toFixed(0)} | ${plainCpu.toFixed(0)} | ${rawMicros.toFixed(0)} |`,
      )
    }
  } finally {
    await Promise.all([berth.stop(), plainCnn.stop(), plainMlp.stop()])
    await dir.remove()
  }
}

await main()
