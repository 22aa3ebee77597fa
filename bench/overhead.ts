/**
 * Overhead benchmark: the same ONNX model run by raw onnxruntime-node `session.run` in this
 * process, and through berth's inference endpoint over real HTTP (JSON and binary tensors), at
 * concurrency 1, side by side in one run.
 *
 *   npm run bench:overhead -- [iterations per round]     (default: 2000)
 *
 * berth runs in this process too (createApp + listen on 127.0.0.1), its runner a child process
 * as in production. The client is node:http with a keep-alive agent; a berth request is timed
 * from sending the body to holding the decoded outputs. Modes are interleaved in rounds, so
 * drift on a shared VM hits them alike.
 */
import { writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import * as ort from 'onnxruntime-node'
import { createApp } from '../src/app.js'
import { loadConfig } from '../src/config/load-config.js'
import { createLogger } from '../src/observability/logger.js'
import { RUNNER_ENTRY } from '../src/scheduler/local/local-scheduler.js'
import { WorkerProcess } from '../src/scheduler/local/worker-process.js'
import { mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { httpClient } from './http-client.js'

const KEY = 'sk_bench_overhead_key_0123456789'
const ROUNDS = 5
const WARMUP = 300

interface Case {
  readonly label: string
  readonly inputs: number
  readonly hidden: number
  readonly outputs: number
}

const CASES: readonly Case[] = [
  { label: 'MLP 16→32→4 (tiny)', inputs: 16, hidden: 32, outputs: 4 },
  { label: 'MLP 512→2048→16 (4.3 MB)', inputs: 512, hidden: 2048, outputs: 16 },
]

const iterations = Number(process.argv[2] ?? 2000)

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
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
  const port = (app.server.server.address() as AddressInfo).port
  const client = httpClient(port, 1)
  const get = async (path: string) => {
    await client.get(path)
  }
  const post = (path: string, body: Buffer, headers: Record<string, string>) =>
    client.post(path, body, { authorization: `Bearer ${KEY}`, ...headers })

  try {
    const ns = await app.server.inject({
      method: 'POST',
      url: '/v1/namespaces',
      headers: { authorization: `Bearer ${KEY}` },
      payload: { namespace_name: 'bench' },
    })
    const namespaceId = ns.json().namespace_id as string
    console.log(
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
    )
    console.log(`${iterations} requests per mode per round, ${ROUNDS} rounds, concurrency 1\n`)

    for (const c of CASES) {
      const model = mlpModel(c.inputs, c.hidden, c.outputs, 1)
      const name = `bench-${c.inputs}-${c.hidden}`
      const { payload, headers } = multipartBody([
        { name: 'name', value: name },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '1' },
        { name: 'file', filename: 'm.tar.gz', content: await tarGzOf({ 'model.onnx': model }) },
      ])
      const up = await app.server.inject({
        method: 'POST',
        url: `/v1/namespaces/${namespaceId}/models?wait=true`,
        headers: { ...headers, authorization: `Bearer ${KEY}` },
        payload,
      })
      if (up.json().deployment_status !== 'deployed') throw new Error(up.body)

      const modelPath = join(dir.path, `${name}.onnx`)
      await writeFile(modelPath, model)
      // As berth's runner creates it: CPU, one intra-op thread (num_cpus 1), all optimizations.
      const session = await ort.InferenceSession.create(modelPath, {
        executionProviders: ['cpu'],
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      })
      const x = Float32Array.from({ length: c.inputs }, (_, i) => Math.sin(i))
      const path = `/v1/namespaces/${namespaceId}/models/${name}_1_0_0/infer`
      const jsonBody = Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'x', shape: [1, c.inputs], datatype: 'FP32', data: Array.from(x) }],
        }),
      )
      const binHeader = Buffer.from(
        JSON.stringify({
          inputs: [
            {
              name: 'x',
              shape: [1, c.inputs],
              datatype: 'FP32',
              parameters: { binary_data_size: x.byteLength },
            },
          ],
          parameters: { binary_data_output: true },
        }),
      )
      const binBody = Buffer.concat([binHeader, Buffer.from(x.buffer)])
      const binHeaders = {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': String(binHeader.length),
      }

      // berth's runner process alone, driven directly: the cost of the process hop.
      const runner = await WorkerProcess.start({
        entry: RUNNER_ENTRY,
        args: ['onnx'],
        startTimeoutMs: 10_000,
        killGraceMs: 1000,
        maxFrameBytes: 1 << 30,
      })
      await runner.call({ type: 'load', slot: 0, modelPath, intraOpThreads: 1 }, 10_000)
      const wire = {
        type: 'infer',
        slot: 0,
        inputs: [
          { name: 'x', datatype: 'FP32', shape: [1, c.inputs], data: new Uint8Array(x.buffer) },
        ],
        outputs: null,
      } as const

      const modes: Record<string, () => Promise<unknown>> = {
        raw: async () => {
          const out = await session.run({ x: new ort.Tensor('float32', x, [1, c.inputs]) })
          return out.y?.data
        },
        hop: () => runner.call(wire, 10_000),
        floor: () => get('/healthz'),
        json: async () => {
          const res = await post(path, jsonBody, { 'content-type': 'application/json' })
          if (res.status !== 200) throw new Error(res.body.toString())
          return JSON.parse(res.body.toString()).outputs[0].data
        },
        binary: async () => {
          const res = await post(path, binBody, binHeaders)
          if (res.status !== 200) throw new Error(res.body.toString())
          const n = Number(res.headers['inference-header-content-length'])
          const bytes = Uint8Array.from(res.body.subarray(n))
          return new Float32Array(bytes.buffer)
        },
      }
      const samples: Record<string, number[]> = {
        raw: [],
        hop: [],
        floor: [],
        json: [],
        binary: [],
      }
      for (const run of Object.values(modes)) for (let i = 0; i < WARMUP; i++) await run()
      for (let round = 0; round < ROUNDS; round++) {
        for (const [mode, run] of Object.entries(modes)) {
          const into = samples[mode] as number[]
          for (let i = 0; i < iterations; i++) {
            const t0 = performance.now()
            await run()
            into.push(performance.now() - t0)
          }
        }
      }
      await session.release()
      await runner.stop()

      const raw = [...(samples.raw as number[])].sort((a, b) => a - b)
      const rawP50 = percentile(raw, 50)
      console.log(`${c.label}`)
      console.log('| Path | p50 (ms) | p99 (ms) | added at p50 (ms) |')
      console.log('| --- | --- | --- | --- |')
      for (const [mode, label] of [
        ['raw', 'raw `session.run`, in-process'],
        ['hop', "berth's runner process driven directly (no HTTP)"],
        ['floor', 'HTTP round trip doing nothing (`GET /healthz`)'],
        ['json', 'berth, JSON'],
        ['binary', 'berth, binary tensors'],
      ] as const) {
        const sorted = [...(samples[mode] as number[])].sort((a, b) => a - b)
        const p50 = percentile(sorted, 50)
        const added = mode === 'raw' || mode === 'floor' ? '—' : (p50 - rawP50).toFixed(3)
        console.log(
          `| ${label} | ${p50.toFixed(3)} | ${percentile(sorted, 99).toFixed(3)} | ${added} |`,
        )
      }
      console.log('')
    }
  } finally {
    client.close()
    await app.close()
    await dir.remove()
  }
}

await main()
