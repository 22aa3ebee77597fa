/**
 * Deployment benchmarks against a real `berth serve` child process:
 *   1. cold start: upload → `deployed` (`?wait=true`) for ONNX models of about 1, 10 and 100 MB;
 *   2. density: 50 small models deployed on one node — total time until all are deployed, and
 *      the memory each deployment costs (its runner's resident set, from /proc).
 *
 *   npm run bench:deploy -- [models for density]     (default: 50)
 */
import { readdir } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { deepMlpModel, mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { processMemory } from './proc-memory.js'

const KEY = 'sk_bench_deploy_key_0123456789abc'
const density = Number(process.argv[2] ?? 50)
const MIB = 1024 ** 2

const residentBytes = async (pid: number) => (await processMemory(pid)).rss

const auth = { authorization: `Bearer ${KEY}` }

type UploadBody = ReturnType<typeof multipartBody>

/** The request body: built before any clock starts (gzip of 100 MB takes seconds here). */
async function uploadBody(
  name: string,
  model: Buffer,
  fields: Record<string, string>,
): Promise<UploadBody> {
  return multipartBody([
    { name: 'name', value: name },
    { name: 'version', value: '1.0.0' },
    { name: 'model_format', value: 'onnx' },
    ...Object.entries(fields).map(([n, value]) => ({ name: n, value })),
    { name: 'file', filename: 'm.tar.gz', content: await tarGzOf({ 'model.onnx': model }) },
  ])
}

/** A `berth serve` child process with a `bench` namespace, and an upload through it. */
async function benchServer(dataDir: string, env: Record<string, string> = {}) {
  const server = await startBerthServe({
    BERTH_DATA_DIR: dataDir,
    BERTH_BOOTSTRAP_API_KEY: KEY,
    BERTH_MAX_ARCHIVE_BYTES: String(1024 ** 3),
    ...env,
  })
  await fetch(`${server.url}/v1/namespaces`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace_name: 'bench' }),
  })
  const upload = async ({ payload, headers }: UploadBody, wait: boolean) => {
    const res = await fetch(`${server.url}/v1/namespaces/bench/models${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: { ...auth, ...headers },
      body: payload,
    })
    const answer = (await res.json()) as { deployment_status?: string }
    if (res.status !== 200) throw new Error(JSON.stringify(answer))
    return answer.deployment_status
  }
  return { server, upload }
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-deploy-')
  try {
    console.log(
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}\n`,
    )
    // MLPs sized to about 1, 10 and 100 MB of FP32 weights.
    const cold = await Promise.all(
      (
        [
          ['1 MB', [256, 512, 256, 16]],
          ['10 MB', [512, 2048, 768, 16]],
          ['100 MB', [1024, 4096, 4096, 1024, 16]],
        ] as const
      ).map(async ([label, dims]) => {
        const model = deepMlpModel(dims, 3)
        const name = `cold-${label.replace(' ', '')}`
        return { label, model, body: await uploadBody(name, model, { memory_gb: '2' }) }
      }),
    )
    // Cold start without and with a spare runner, each on a fresh server.
    const timings = new Map<string, number[]>()
    for (const spares of ['0', '1']) {
      const { server, upload } = await benchServer(join(dir.path, `cold-${spares}`), {
        BERTH_SPARE_RUNNERS: spares,
      })
      try {
        // The spare (if any) is started with the server; give it the time a user would.
        await new Promise((r) => setTimeout(r, 1000))
        for (const { label, body } of cold) {
          const started = performance.now()
          const status = await upload(body, true)
          const ms = performance.now() - started
          if (status !== 'deployed') throw new Error(`${label}: ${status}`)
          timings.set(label, [...(timings.get(label) ?? []), ms])
        }
      } finally {
        await server.stop()
      }
    }
    console.log('| ONNX model | upload → deployed, no spare (ms) | with one spare runner (ms) |')
    console.log('| --- | --- | --- |')
    for (const { label, model } of cold) {
      const [none, one] = timings.get(label) ?? []
      console.log(
        `| ${label} (${(model.length / MIB).toFixed(1)} MiB) | ${none?.toFixed(0)} | ${one?.toFixed(0)} |`,
      )
    }

    // Density: small models, admitted by their small requests (default settings: one spare).
    const { server, upload } = await benchServer(join(dir.path, 'density'))
    try {
      const small = mlpModel(16, 32, 4, 5)
      const bodies = await Promise.all(
        Array.from({ length: density }, (_, i) =>
          uploadBody(`small-${i}`, small, { memory_gb: '0.25', num_cpus: '0.1' }),
        ),
      )
      const started = performance.now()
      for (const body of bodies) await upload(body, false)
      const uploaded = performance.now() - started
      const deployed = async () => {
        const res = await fetch(`${server.url}/v1/namespaces/bench/models`, { headers: auth })
        const list = (await res.json()) as { models: Array<{ name: string; deployed: boolean }> }
        return list.models.filter((m) => m.name.startsWith('small-') && m.deployed).length
      }
      while ((await deployed()) < density) await new Promise((r) => setTimeout(r, 50))
      const total = performance.now() - started
      const pids = (await readdir(join(dir.path, 'density', 'run'))).map(Number)
      const sizes = await Promise.all(pids.map(residentBytes))
      const runnerBytes = sizes.reduce((a, b) => a + b, 0)
      const serverBytes = await residentBytes(server.child.pid ?? 0)
      console.log(
        `\nDensity: ${density} small models (MLP 16→32→4) uploaded in ${(uploaded / 1000).toFixed(1)} s, all deployed after ${(total / 1000).toFixed(1)} s`,
      )
      console.log(
        `Runner processes: ${pids.length} (the spare included); resident memory ${(runnerBytes / MIB).toFixed(0)} MiB in all, ${(runnerBytes / pids.length / MIB).toFixed(1)} MiB per process (min ${(Math.min(...sizes) / MIB).toFixed(1)}, max ${(Math.max(...sizes) / MIB).toFixed(1)}); server ${(serverBytes / MIB).toFixed(0)} MiB`,
      )
    } finally {
      await server.stop()
    }
  } finally {
    await dir.remove()
  }
}

await main()
