/**
 * On-demand models against a real `berth serve` child process, in three scenarios:
 *
 *   npm run bench:on-demand -- density [models]        (default 300)
 *     tiny MLPs (16→32→4) uploaded with deploy=false, then each asked once: every one must
 *     answer; resident memory of the server and all its runners (goal ≤ 3 GiB for 300), and
 *     MiB per extra model.
 *   npm run bench:on-demand -- cold-start [loads]      (default 50)
 *     for a 1 MB and a 10 MB ONNX model: `loads` copies uploaded with deploy=false, each asked
 *     once (a cold load: the first request loads it) then again (warm); p50/p99 of both
 *     (goal: cold p50 ≤ 300 ms for 1 MB, ≤ 600 ms for 10 MB).
 *   npm run bench:on-demand -- churn [models] [fit] [seconds]   (default 100, 20, 60)
 *     `models` tiny models asked round-robin (4 at a time) on a node whose memory fits `fit` of
 *     them as runners of their own (sharing off: the hard case, every miss starts a process):
 *     failed requests (goal 0), requests/s, the share that were cold loads, evictions, the
 *     server's memory at start and end, and the most the runners held at once against the
 *     budget.
 *
 * Figures and the machine are recorded in bench/README.md.
 */
import { cpus, totalmem } from 'node:os'
import { mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { type ServeProcess, startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { expectOk, httpClient } from './http-client.js'
import { childrenOf, processMemory } from './proc-memory.js'

const KEY = 'sk_bench_on_demand_key_0123456789ab'
const AUTH = { authorization: `Bearer ${KEY}` }
const JSON_HEADERS = { ...AUTH, 'content-type': 'application/json' }
const MIB = 1024 ** 2

const residentBytes = async (pid: number) => (await processMemory(pid)).rss

/** The server's resident memory and its runners' together. */
async function memoryOf(pid: number): Promise<{ server: number; runners: number; count: number }> {
  const children = await childrenOf(pid)
  const sizes = await Promise.all(children.map(residentBytes))
  return {
    server: await residentBytes(pid),
    runners: sizes.reduce((a, b) => a + b, 0),
    count: children.length,
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

/** A fresh `berth serve` with a namespace, and what the scenarios do with it. */
async function session(env: Record<string, string> = {}) {
  const dir = await tempDir('berth-on-demand-')
  const server: ServeProcess = await startBerthServe({
    BERTH_DATA_DIR: dir.path,
    BERTH_BOOTSTRAP_API_KEY: KEY,
    BERTH_IDLE_TIMEOUT_S: '0',
    ...env,
  })
  const pid = server.child.pid as number
  const http = httpClient(Number(new URL(server.url).port), 16)
  const created = expectOk(
    await http.post(
      '/v1/namespaces',
      Buffer.from(JSON.stringify({ namespace_name: 'bench' })),
      JSON_HEADERS,
    ),
  )
  const ns = JSON.parse(created.body.toString()).namespace_id as string
  const upload = async (name: string, archive: Buffer) => {
    const { payload, headers } = multipartBody([
      { name: 'name', value: name },
      { name: 'version', value: '1.0.0' },
      { name: 'model_format', value: 'onnx' },
      { name: 'memory_gb', value: '0.5' },
      { name: 'deploy', value: 'false' },
      { name: 'file', filename: 'model.tar.gz', content: archive },
    ])
    expectOk(await http.post(`/v1/namespaces/${ns}/models`, payload, { ...AUTH, ...headers }))
  }
  const infer = async (name: string, width: number) => {
    const body = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'x', shape: [1, width], datatype: 'FP32', data: Array(width).fill(0.5) }],
      }),
    )
    const started = performance.now()
    const answer = await http.post(`/v1/namespaces/${ns}/models/${name}_1_0_0/infer`, body, {
      ...JSON_HEADERS,
    })
    return { status: answer.status, ms: performance.now() - started, body: answer.body }
  }
  const metric = async (name: string) => {
    const text = (await http.get('/metrics')).body.toString()
    let sum = 0
    for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) {
      sum += Number(match[1])
    }
    return sum
  }
  const close = async () => {
    http.close()
    await server.stop()
    await dir.remove()
  }
  return { pid, upload, infer, metric, close }
}

async function density(models: number): Promise<void> {
  const s = await session()
  try {
    const before = await memoryOf(s.pid)
    const archive = await tarGzOf({ 'model.onnx': mlpModel(16, 32, 4, 1) })
    let started = performance.now()
    for (let i = 0; i < models; i += 1) await s.upload(`tiny-${i}`, archive)
    const uploadS = (performance.now() - started) / 1000
    started = performance.now()
    const cold: number[] = []
    let failed = 0
    for (let i = 0; i < models; i += 1) {
      const answer = await s.infer(`tiny-${i}`, 16)
      if (answer.status === 200) cold.push(answer.ms)
      else failed += 1
    }
    const askS = (performance.now() - started) / 1000
    const after = await memoryOf(s.pid)
    const total = after.server + after.runners
    const extra = total - (before.server + before.runners)
    console.log(`
| figure | value | goal |
| --- | --- | --- |
| models uploaded (deploy=false) / answered / failed | ${models} / ${cold.length} / ${failed} | all answer |
| uploads | ${uploadS.toFixed(1)} s | — |
| first requests (each a cold load) | ${askS.toFixed(1)} s; p50 ${percentile(cold, 50).toFixed(1)} ms, p99 ${percentile(cold, 99).toFixed(1)} ms | — |
| runner processes | ${after.count} | — |
| resident: server + runners | ${(after.server / MIB).toFixed(0)} + ${(after.runners / MIB).toFixed(0)} = ${(total / MIB).toFixed(0)} MiB | ≤ 3072 MiB |
| resident per extra model | ${(extra / models / MIB).toFixed(2)} MiB | — |
`)
  } finally {
    await s.close()
  }
}

async function coldStart(loads: number): Promise<void> {
  const sizes = [
    { label: '1 MB', model: mlpModel(256, 1024, 4, 2), width: 256 },
    { label: '10 MB', model: mlpModel(1024, 2432, 4, 3), width: 1024 },
  ]
  const rows: string[] = []
  for (const { label, model, width } of sizes) {
    const s = await session()
    try {
      const archive = await tarGzOf({ 'model.onnx': model })
      for (let i = 0; i < loads; i += 1) await s.upload(`m-${i}`, archive)
      const cold: number[] = []
      const warm: number[] = []
      for (let i = 0; i < loads; i += 1) {
        const first = await s.infer(`m-${i}`, width)
        if (first.status !== 200)
          throw new Error(`cold ${label} ${i}: ${first.status} ${first.body}`)
        cold.push(first.ms)
        const again = await s.infer(`m-${i}`, width)
        if (again.status !== 200) throw new Error(`warm ${label} ${i}: ${again.status}`)
        warm.push(again.ms)
      }
      const f = (values: number[]) =>
        `${percentile(values, 50).toFixed(1)} / ${percentile(values, 99).toFixed(1)} ms`
      rows.push(
        `| ${label} (${(model.length / 1e6).toFixed(1)} MB graph) | ${f(cold)} | ${f(warm)} | ${label === '1 MB' ? '≤ 300' : '≤ 600'} ms p50 |`,
      )
    } finally {
      await s.close()
    }
  }
  console.log(`
| model | cold: first request, load included (p50 / p99 of ${loads}) | warm (p50 / p99) | goal |
| --- | --- | --- | --- |
${rows.join('\n')}
`)
}

async function churn(models: number, fit: number, seconds: number): Promise<void> {
  // Sharing off: each model a runner of its own (about 90 MiB measured), the node fits `fit`.
  const perModel = 100 * MIB
  const budget = fit * perModel
  const s = await session({
    BERTH_SHARED_RUNNER_MAX_MODELS: '1',
    BERTH_NODE_MEMORY_GB: String(budget / 1024 ** 3),
    BERTH_SPARE_RUNNERS: '1',
  })
  try {
    const archive = await tarGzOf({ 'model.onnx': mlpModel(16, 32, 4, 4) })
    for (let i = 0; i < models; i += 1) await s.upload(`churn-${i}`, archive)
    const start = await memoryOf(s.pid)
    let next = 0
    let ok = 0
    const failures: Record<string, number> = {}
    let peakRunners = 0
    const until = performance.now() + seconds * 1000
    const sampler = setInterval(() => {
      void memoryOf(s.pid).then((m) => {
        peakRunners = Math.max(peakRunners, m.runners)
      })
    }, 250)
    const worker = async () => {
      while (performance.now() < until) {
        const i = next
        next = (next + 1) % models
        const answer = await s.infer(`churn-${i}`, 16)
        if (answer.status === 200) ok += 1
        else {
          const code = JSON.parse(answer.body.toString()).error?.code ?? answer.status
          failures[code] = (failures[code] ?? 0) + 1
        }
      }
    }
    await Promise.all(Array.from({ length: 4 }, worker))
    clearInterval(sampler)
    const end = await memoryOf(s.pid)
    const coldLoads = await s.metric('berth_model_cold_loads_total')
    const evictions = await s.metric('berth_model_evictions_total')
    const failed = Object.values(failures).reduce((a, b) => a + b, 0)
    const total = ok + failed
    console.log(`
| figure | value | goal |
| --- | --- | --- |
| models / fit in the node's memory (${(budget / MIB).toFixed(0)} MiB) | ${models} / ${fit} | — |
| requests in ${seconds} s (4 at a time, round-robin) | ${total} (${(total / seconds).toFixed(1)} req/s) | — |
| failed | ${failed} ${JSON.stringify(failures)} | 0 |
| cold loads / evictions | ${coldLoads} (${((100 * coldLoads) / Math.max(1, total)).toFixed(0)}% of requests) / ${evictions} | — |
| server resident at start → end | ${(start.server / MIB).toFixed(0)} → ${(end.server / MIB).toFixed(0)} MiB | flat |
| most the runners held at once (sampled every 250 ms) | ${(peakRunners / MIB).toFixed(0)} MiB | ≤ ${(budget / MIB).toFixed(0)} MiB |
`)
  } finally {
    await s.close()
  }
}

async function main(): Promise<void> {
  const [scenario = 'density', ...args] = process.argv.slice(2)
  console.log(
    `berth on-demand ${scenario}: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
  )
  const n = (i: number, fallback: number) => Number(args[i] ?? fallback)
  if (scenario === 'density') await density(n(0, 300))
  else if (scenario === 'cold-start') await coldStart(n(0, 50))
  else if (scenario === 'churn') await churn(n(0, 100), n(1, 20), n(2, 60))
  else throw new Error(`unknown scenario ${scenario}: density, cold-start or churn`)
}

await main()
