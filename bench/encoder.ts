/**
 * Encoder benchmark: a MiniLM-size BERT (6 layers, hidden 384, 12 heads, vocab 30522; random
 * weights with HF names, written by bench/encoder_torch.py) converted by berth and served over
 * its endpoint, against the same model run directly in torch, in one run.
 *
 *   npm run bench:encoder -- [iterations]     (default: 100)
 *
 * Reports: the conversion alone (weights → ONNX graph, in-process), upload → deployed for a fresh
 * model (conversion in the runner included) and for a redeploy from the kept graph, and latency
 * p50/p99 for batches 1×16, 1×64 and 8×64 tokens: torch (one thread, the forward pass only) and
 * berth (HTTP, binary tensors, one runner with num_cpus 1 → one intra-op thread).
 */
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createApp } from '../src/app.js'
import { loadConfig } from '../src/config/load-config.js'
import { encoderConfig, encoderToOnnx } from '../src/conversion/encoder-to-onnx.js'
import { openWeights } from '../src/formats/weights-reader.js'
import { createLogger } from '../src/observability/logger.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'
import { expectOk, httpClient } from './http-client.js'

const KEY = 'sk_bench_encoder_key_0123456789ab'
const TORCH_SCRIPT = fileURLToPath(new URL('../../bench/encoder_torch.py', import.meta.url))
const iterations = Number(process.argv[2] ?? 100)

interface TorchResults {
  readonly torch: string
  readonly results: Record<string, { p50: number; p99: number; ids: number[][] }>
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-encoder-')
  try {
    const { stdout } = await promisify(execFile)(
      '/usr/bin/python3',
      [TORCH_SCRIPT, dir.path, String(iterations)],
      { maxBuffer: 64 * 1024 * 1024, timeout: 30 * 60_000 },
    )
    const torch = JSON.parse(stdout) as TorchResults
    const modelDir = join(dir.path, 'minilm')
    const configJson = await readFile(join(modelDir, 'config.json'))
    const weights = await readFile(join(modelDir, 'model.safetensors'))

    // The conversion alone, in this process.
    let started = performance.now()
    const reader = await openWeights(modelDir, {
      source: 'safetensors',
      files: ['model.safetensors'],
    })
    const graph = await encoderToOnnx(encoderConfig(JSON.parse(configJson.toString())), reader)
    reader.close()
    const conversionMs = performance.now() - started

    const config = loadConfig({
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: KEY,
      BERTH_LOG_LEVEL: 'warn',
    })
    const app = await createApp(config, { logger: createLogger('warn') })
    await app.server.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.server.address() as AddressInfo).port
    const client = httpClient(port, 1)
    try {
      const auth = { authorization: `Bearer ${KEY}` }
      await app.server.inject({
        method: 'POST',
        url: '/v1/namespaces',
        headers: auth,
        payload: { namespace_name: 'bench' },
      })
      const archive = await tarGzOf({ 'config.json': configJson, 'model.safetensors': weights })
      const { payload, headers } = multipartBody([
        { name: 'name', value: 'minilm' },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'safetensors' },
        { name: 'memory_gb', value: '2' },
        { name: 'file', filename: 'minilm.tar.gz', content: archive },
      ])
      started = performance.now()
      const up = await app.server.inject({
        method: 'POST',
        url: '/v1/namespaces/bench/models?wait=true',
        headers: { ...headers, ...auth },
        payload,
      })
      const uploadToDeployedMs = performance.now() - started
      if (up.json().deployment_status !== 'deployed') throw new Error(up.body)
      started = performance.now()
      const redeploy = await app.server.inject({
        method: 'POST',
        url: '/v1/namespaces/bench/models/minilm_1_0_0/deploy?reload=true&wait=true',
        headers: auth,
      })
      const redeployMs = performance.now() - started
      if (redeploy.json().deployment_status !== 'deployed') throw new Error(redeploy.body)

      const post = async (body: Buffer, headerLength: number) =>
        expectOk(
          await client.post('/v1/namespaces/bench/models/minilm_1_0_0/infer', body, {
            ...auth,
            'content-type': 'application/octet-stream',
            'inference-header-content-length': String(headerLength),
          }),
        ).body

      console.log(
        `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}, torch ${torch.torch}`,
      )
      console.log(
        `Model: 6 layers, hidden 384, 12 heads, vocab 30522; model.safetensors ${(weights.length / 1024 ** 2).toFixed(1)} MiB; graph ${(graph.length / 1024 ** 2).toFixed(1)} MiB`,
      )
      console.log(
        `Conversion in-process (read weights, build, encode): ${conversionMs.toFixed(0)} ms`,
      )
      console.log(
        `Upload → deployed, converting in the runner: ${uploadToDeployedMs.toFixed(0)} ms; redeploy from the kept graph: ${redeployMs.toFixed(0)} ms`,
      )
      console.log(`\n${iterations} requests per shape, one at a time\n`)
      console.log(
        '| Batch × tokens | torch p50 (ms) | torch p99 (ms) | berth p50 (ms) | berth p99 (ms) | berth / torch at p50 |',
      )
      console.log('| --- | --- | --- | --- | --- | --- |')
      for (const [shape, result] of Object.entries(torch.results)) {
        const rows = result.ids.length
        const length = result.ids[0]?.length ?? 0
        const tensor = (rowsOf: number[][]) =>
          Buffer.from(BigInt64Array.from(rowsOf.flat().map(BigInt)).buffer)
        const ids = tensor(result.ids)
        const mask = tensor(result.ids.map((r) => r.map(() => 1)))
        const types = tensor(result.ids.map((r) => r.map(() => 0)))
        const header = Buffer.from(
          JSON.stringify({
            inputs: ['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({
              name,
              shape: [rows, length],
              datatype: 'INT64',
              parameters: { binary_data_size: ids.length },
            })),
            outputs: [{ name: 'last_hidden_state', parameters: { binary_data: true } }],
          }),
        )
        const body = Buffer.concat([header, ids, mask, types])
        for (let i = 0; i < 5; i++) await post(body, header.length)
        const times: number[] = []
        for (let i = 0; i < iterations; i++) {
          const t0 = performance.now()
          await post(body, header.length)
          times.push(performance.now() - t0)
        }
        times.sort((a, b) => a - b)
        const p50 = percentile(times, 50)
        console.log(
          `| ${shape} | ${result.p50.toFixed(2)} | ${result.p99.toFixed(2)} | ${p50.toFixed(2)} | ${percentile(times, 99).toFixed(2)} | ${(p50 / result.p50).toFixed(2)} |`,
        )
      }
    } finally {
      client.close()
      await app.close()
    }
  } finally {
    await dir.remove()
  }
}

await main()
