/**
 * Reliability soak against a real `berth serve` child process: inference on two steady models at
 * 80% of the capacity measured first (closed loop, with the churn already running), while a churn
 * loop uploads, deploys, undeploys, redeploys and deletes other models without pause. It reports errors (goal 0), the server's resident
 * memory drift between the end of the warm-up and the end (goal ≤ 5%), leaked capacity
 * (`berth_capacity_leaks`, goal 0), and leaked runner processes and files (goal 0).
 *
 *   npm run bench:soak -- [soak minutes] [capacity seconds]     (default: 10, 10)
 *
 * `test/e2e/soak.test.ts` runs the same soak for seconds in `npm test`, asserting the goals that
 * are not timings (errors, leaks).
 */
import { readdir } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { type ServeProcess, startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { eventually, isGone } from '../test/helpers/processes.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { type HttpAnswer, httpClient } from './http-client.js'
import { childrenOf, processMemory } from './proc-memory.js'

const KEY = 'sk_bench_soak_key_0123456789abcdef'
const AUTH = { authorization: `Bearer ${KEY}` }
const JSON_HEADERS = { ...AUTH, 'content-type': 'application/json' }
const STEADY = ['steady-a', 'steady-b']
/** Closed-loop concurrency when measuring capacity, and the most requests in flight in the soak. */
const CALIBRATION_CONCURRENCY = 16
const MAX_IN_FLIGHT = 256
const MIB = 1024 ** 2

export interface SoakOptions {
  /** How long the soak runs (after the capacity measurement). */
  readonly soakMs: number
  /** How long capacity is measured (closed loop). */
  readonly calibrateMs: number
  /** Share of the measured capacity the soak asks for. */
  readonly load: number
  /** Samples before this share of the soak are the warm-up, outside the drift. */
  readonly warmupShare: number
  readonly log?: (line: string) => void
}

export interface SoakReport {
  readonly capacityRps: number
  readonly targetRps: number
  readonly achievedRps: number
  readonly requests: number
  /** Requests not sent because MAX_IN_FLIGHT were waiting (the server fell behind the rate). */
  readonly skipped: number
  /** Answers other than the expected one, and failed connections, by kind. */
  readonly errors: Readonly<Record<string, number>>
  readonly errorCount: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly churnCycles: number
  readonly rssMiB: { readonly afterWarmup: number; readonly end: number; readonly peak: number }
  /** (end − after warm-up) / after warm-up, in percent. */
  readonly rssDriftPercent: number
  readonly capacityLeaks: number
  /** Runner processes beyond the steady models' (while serving), and any left after the stop. */
  readonly leakedProcesses: number
  /** Files in tmp/, and archives or installed folders no model owns. */
  readonly leakedFiles: number
}

const INFER_BODY = Buffer.from(
  JSON.stringify({
    inputs: [
      {
        name: 'x',
        shape: [1, 16],
        datatype: 'FP32',
        data: Array.from({ length: 16 }, (_, i) => i / 16),
      },
    ],
  }),
)

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
}

const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    50,
  )

/** Runs the soak on a fresh data directory; resolves the figures. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined)
  const dir = await tempDir('berth-soak-')
  let server: ServeProcess | undefined
  const errors: Record<string, number> = {}
  const fail = (kind: string) => {
    errors[kind] = (errors[kind] ?? 0) + 1
  }
  try {
    server = await startBerthServe({
      BERTH_DATA_DIR: dir.path,
      BERTH_BOOTSTRAP_API_KEY: KEY,
      // Every runner is a deployment's: a spare would blur the count of leaked processes.
      BERTH_SPARE_RUNNERS: '0',
    })
    const port = Number(new URL(server.url).port)
    const pid = server.child.pid as number
    const http = httpClient(port, MAX_IN_FLIGHT + 8)
    const expect = async (what: string, answer: Promise<HttpAnswer>, status = 200) => {
      try {
        const got = await answer
        if (got.status !== status) fail(`${what}: ${got.status}`)
        return got
      } catch (err) {
        fail(`${what}: ${(err as NodeJS.ErrnoException).code ?? 'connection failed'}`)
        return undefined
      }
    }

    const created = await expect(
      'create namespace',
      http.post(
        '/v1/namespaces',
        Buffer.from(JSON.stringify({ namespace_name: 'soak' })),
        JSON_HEADERS,
      ),
    )
    const ns = JSON.parse(created?.body.toString() ?? '{}').namespace_id as string
    const archive = await tarGzOf({ 'model.onnx': mlpModel(16, 64, 4, 3) })
    const upload = (name: string) => {
      const { payload, headers } = multipartBody([
        { name: 'name', value: name },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '0.5' },
        { name: 'file', filename: 'model.tar.gz', content: archive },
      ])
      return http.post(`/v1/namespaces/${ns}/models?wait=true`, payload, { ...AUTH, ...headers })
    }
    for (const name of STEADY) await expect(`upload ${name}`, upload(name))
    const inferPath = (name: string) => `/v1/namespaces/${ns}/models/${name}_1_0_0/infer`
    const latencies: number[] = []
    const infer = async (name: string, record: boolean) => {
      const started = performance.now()
      const answer = await expect('infer', http.post(inferPath(name), INFER_BODY, JSON_HEADERS))
      if (record && answer !== undefined) latencies.push(performance.now() - started)
    }

    // The churn runs from the start: capacity is measured under the same mixed work.
    let soakOver = false
    let churnCycles = 0
    const churn = (async () => {
      while (!soakOver) {
        const name = `churn-${churnCycles}`
        const base = `/v1/namespaces/${ns}/models/${name}_1_0_0`
        await expect('churn upload', upload(name))
        await infer(name, false)
        await expect('churn undeploy', http.post(`${base}/undeploy`, Buffer.alloc(0), AUTH))
        await expect(
          'churn deploy',
          http.post(`${base}/deploy?wait=true`, Buffer.from('{}'), JSON_HEADERS),
        )
        await infer(name, false)
        await expect('churn delete', http.delete(base, AUTH))
        churnCycles += 1
      }
    })()
    // Capacity: a closed loop over the steady models, beside the churn.
    let served = 0
    const calibrateUntil = performance.now() + options.calibrateMs
    await Promise.all(
      Array.from({ length: CALIBRATION_CONCURRENCY }, async (_, i) => {
        while (performance.now() < calibrateUntil) {
          await infer(STEADY[i % STEADY.length] as string, false)
          served += 1
        }
      }),
    )
    const capacityRps = served / (options.calibrateMs / 1000)
    const targetRps = capacityRps * options.load
    log(`capacity ${capacityRps.toFixed(0)} req/s; soaking at ${targetRps.toFixed(0)} req/s`)

    // The soak: open-loop inference at the target rate, churn beside it, memory sampled.
    const started = performance.now()
    const soakUntil = started + options.soakMs
    const samples: Array<{ at: number; rss: number; peak: number }> = []
    let requests = 0
    let skipped = 0
    let inFlight = 0
    const pendingRequests = new Set<Promise<void>>()
    const load = (async () => {
      while (performance.now() < soakUntil) {
        const due = Math.floor(((performance.now() - started) / 1000) * targetRps)
        while (requests < due) {
          if (inFlight >= MAX_IN_FLIGHT) {
            // The server fell behind: these requests are not sent (and said so), not queued.
            skipped += due - requests
            requests = due
            break
          }
          requests += 1
          inFlight += 1
          const p = infer(STEADY[requests % STEADY.length] as string, true).finally(() => {
            inFlight -= 1
            pendingRequests.delete(p)
          })
          pendingRequests.add(p)
        }
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      await Promise.all(pendingRequests)
    })()
    const sampler = (async () => {
      while (performance.now() < soakUntil) {
        samples.push({ at: performance.now() - started, ...(await processMemory(pid)) })
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, options.soakMs / 20)))
      }
    })()
    await Promise.all([load, sampler])
    soakOver = true
    await churn
    const achievedRps = (requests - skipped) / ((performance.now() - started) / 1000)

    // What is left once the churn is done: only the steady models, serving.
    const metrics = await http.get('/metrics')
    const capacityLeaks = Number(
      /^berth_capacity_leaks (\d+)$/m.exec(metrics.body.toString())?.[1] ?? NaN,
    )
    const runners = await childrenOf(pid)
    let leakedProcesses = Math.max(0, runners.length - STEADY.length)
    const listed = await http.get(`/v1/namespaces/${ns}/models`, AUTH)
    const models = (JSON.parse(listed.body.toString()).models ?? []) as Array<{ model_id: string }>
    const tmpLeft = (await readdir(join(dir.path, 'tmp')).catch(() => [])).length
    const archives = (await readdir(join(dir.path, 'archives', ns)).catch(() => [])).length
    const installed = (await readdir(join(dir.path, 'models', ns)).catch(() => [])).length
    const leakedFiles =
      tmpLeft + Math.max(0, archives - models.length) + Math.max(0, installed - models.length)
    http.close()
    await server.stop()
    server = undefined
    // Ended with the server (a killed process may linger a moment until it is reaped).
    await eventually(() => runners.every(isGone), 5000).catch(() => undefined)
    leakedProcesses += runners.filter((r) => !isGone(r)).length

    const warm = samples.filter((s) => s.at >= options.soakMs * options.warmupShare)
    const tail = warm.slice(Math.floor(warm.length * 0.8))
    const head = warm.slice(0, Math.max(1, Math.ceil(warm.length * 0.1)))
    const afterWarmup = median(head.map((s) => s.rss))
    const end = median(tail.map((s) => s.rss))
    const sorted = [...latencies].sort((a, b) => a - b)
    return {
      capacityRps,
      targetRps,
      achievedRps,
      requests: requests - skipped,
      skipped,
      errors,
      errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
      latencyMs: {
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        max: sorted.at(-1) ?? 0,
      },
      churnCycles,
      rssMiB: {
        afterWarmup: afterWarmup / MIB,
        end: end / MIB,
        peak: Math.max(0, ...samples.map((s) => s.peak)) / MIB,
      },
      rssDriftPercent: afterWarmup === 0 ? 0 : ((end - afterWarmup) / afterWarmup) * 100,
      capacityLeaks,
      leakedProcesses,
      leakedFiles,
    }
  } finally {
    await server?.stop('SIGKILL')
    await dir.remove()
  }
}

async function main(): Promise<void> {
  const minutes = Number(process.argv[2] ?? 10)
  const calibrateS = Number(process.argv[3] ?? 10)
  console.log(
    `berth soak: ${minutes} min at 80% of capacity; ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
  )
  const report = await runSoak({
    soakMs: minutes * 60_000,
    calibrateMs: calibrateS * 1000,
    load: 0.8,
    warmupShare: 0.1,
    log: (line) => console.log(line),
  })
  console.log(JSON.stringify(report, null, 2))
  const f = (n: number) => n.toFixed(1)
  console.log(`
| figure | value | goal |
| --- | --- | --- |
| capacity (closed loop, c=${CALIBRATION_CONCURRENCY}) | ${report.capacityRps.toFixed(0)} req/s | — |
| soak load | ${report.achievedRps.toFixed(0)} req/s (target ${report.targetRps.toFixed(0)}) | 80% of capacity |
| requests / skipped / churn cycles | ${report.requests} / ${report.skipped} / ${report.churnCycles} | — |
| errors | ${report.errorCount} ${JSON.stringify(report.errors)} | 0 |
| latency p50 / p99 / max | ${f(report.latencyMs.p50)} / ${f(report.latencyMs.p99)} / ${f(report.latencyMs.max)} ms | — |
| server RSS after warm-up → end (peak) | ${f(report.rssMiB.afterWarmup)} → ${f(report.rssMiB.end)} MiB (${f(report.rssMiB.peak)}) | — |
| RSS drift | ${f(report.rssDriftPercent)}% | ≤ 5% |
| leaked reservations (berth_capacity_leaks) | ${report.capacityLeaks} | 0 |
| leaked processes / files | ${report.leakedProcesses} / ${report.leakedFiles} | 0 / 0 |
`)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main()
