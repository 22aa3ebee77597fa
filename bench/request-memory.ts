/**
 * What big inference requests cost the server (issue 13, report 3), against a real `berth serve`
 * child process: its resident memory (from /proc) and how long `/healthz` takes to answer while
 *   1. one ~60 MB JSON inference runs on a small MLP (`memory_gb` 0.5);
 *   2. 12 of them run at once;
 *   3. a `[40000,1]·[1,40000]` matmul (a 6.4 GB output) is asked for;
 * and, after each, the deployment's state and whether a small request is still served.
 *
 *   npm run bench:request-memory -- [MB per request] [concurrent requests]   (default: 60 12)
 *
 * Extra `BERTH_*` variables for the server may be given in the environment (e.g.
 * `BERTH_MAX_INFER_JSON_BYTES=67108864` to let the big JSON bodies through to the decoder);
 * `BENCH_LOG=1` prints the server's log lines about deployments and refusals at the end.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { matmulModel, mlpModel } from '../test/fixtures/onnx-models.js'
import { tarGzOf } from '../test/fixtures/tar-builder.js'
import { startBerthServe } from '../test/helpers/berth-process.js'
import { multipartBody } from '../test/helpers/multipart.js'
import { tempDir } from '../test/helpers/temp-dir.js'

const KEY = 'sk_bench_request_memory_0123456789'
const MB = Number(process.argv[2] ?? 60)
const CONCURRENT = Number(process.argv[3] ?? 12)
const MIB = 1024 ** 2
const auth = { authorization: `Bearer ${KEY}` }

async function status(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1])
  return { rss: kb('VmRSS') * 1024, hwm: kb('VmHWM') * 1024 }
}

/** Resets the process's peak resident set (`VmHWM`), so the next reading is this phase's peak. */
async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5').catch(() => undefined)
}

/** A JSON inference body of about `mb` MB: `x` [rows, 4] FP32, rows of short decimals. */
function bigJsonBody(mb: number): { body: Buffer; rows: number } {
  const row = '[0.1234567,-0.7654321,0.5555555,-0.3333333]'
  const rows = Math.floor((mb * 1e6) / (row.length + 1))
  const data = new Array(rows).fill(row).join(',')
  const body = Buffer.from(
    `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},4],"data":[${data}]}]}`,
  )
  return { body, rows }
}

async function main(): Promise<void> {
  const dir = await tempDir('berth-bench-request-memory-')
  const extra = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[0].startsWith('BERTH_') && e[1] !== undefined,
    ),
  )
  const server = await startBerthServe({
    ...extra,
    BERTH_DATA_DIR: dir.path,
    BERTH_BOOTSTRAP_API_KEY: KEY,
  })
  const pid = server.child.pid as number
  const url = server.url
  try {
    console.log(
      `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 1024 ** 3).toFixed(0)} GiB, Node ${process.version}`,
    )
    console.log(`Server variables: ${JSON.stringify(extra)}\n`)
    await fetch(`${url}/v1/namespaces`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'bench' }),
    })
    const upload = async (name: string, model: Buffer) => {
      const { payload, headers } = multipartBody([
        { name: 'name', value: name },
        { name: 'version', value: '1.0.0' },
        { name: 'model_format', value: 'onnx' },
        { name: 'memory_gb', value: '0.5' },
        { name: 'file', filename: 'm.tar.gz', content: await tarGzOf({ 'model.onnx': model }) },
      ])
      const res = await fetch(`${url}/v1/namespaces/bench/models?wait=true`, {
        method: 'POST',
        headers: { ...auth, ...headers },
        body: payload,
      })
      const answer = (await res.json()) as { deployment_status?: string }
      if (answer.deployment_status !== 'deployed') throw new Error(JSON.stringify(answer))
    }
    await upload('mlp', mlpModel(4, 64, 4, 1))
    await upload('matmul', matmulModel())

    /**
     * Sends the body at once, as most clients do. An answer the server gives before reading the
     * body closes the connection; a client still sending may see only the close (counted as
     * "closed before the answer was read").
     */
    const infer = async (model: string, body: Buffer | string) => {
      let res: Response
      try {
        res = await fetch(`${url}/v1/namespaces/bench/models/${model}_1_0_0/infer`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body,
        })
      } catch {
        return { status: 0, code: 'closed before the answer was read', retryAfter: null }
      }
      const text = await res.text()
      let code = ''
      if (res.status !== 200) code = (JSON.parse(text) as { error: { code: string } }).error.code
      return { status: res.status, code, retryAfter: res.headers.get('retry-after') }
    }
    const state = async (model: string) => {
      const res = await fetch(`${url}/v1/namespaces/bench/models/${model}_1_0_0`, {
        headers: auth,
      })
      const { model: m } = (await res.json()) as {
        model: { deployment: { state: string; reason: string } }
      }
      return `${m.deployment.state}/${m.deployment.reason}`
    }
    const small = JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    })

    /** Runs `work` while watching the server's memory and `/healthz`. */
    const watched = async <T>(work: () => Promise<T>) => {
      await resetPeak(pid)
      const before = (await status(pid)).rss
      // Probed from another process: this one is busy sending the bodies, and its own event
      // loop's delays are not the server's.
      const probe = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `while (true) { const t = performance.now(); await fetch(${JSON.stringify(`${url}/healthz`)}).then((r) => r.arrayBuffer()); console.log(performance.now() - t); await new Promise((r) => setTimeout(r, 100)) }`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let probed = ''
      probe.stdout.on('data', (chunk) => {
        probed += String(chunk)
      })
      const result = await work()
      probe.kill()
      await once(probe, 'exit')
      const healthz = probed
        .split('\n')
        .filter((l) => l !== '')
        .map(Number)
      const after = await status(pid)
      return {
        result,
        rss: `${(before / MIB).toFixed(0)} → peak ${(after.hwm / MIB).toFixed(0)} MiB (after: ${(after.rss / MIB).toFixed(0)})`,
        healthz:
          healthz.length === 0
            ? 'not probed (answered within 100 ms)'
            : `${healthz.length} probes, slowest ${Math.max(...healthz).toFixed(0)} ms, median ${healthz.sort((a, b) => a - b)[Math.floor(healthz.length / 2)]?.toFixed(0)} ms`,
      }
    }
    const tally = (answers: ReadonlyArray<{ status: number; code: string; retryAfter: unknown }>) =>
      Object.entries(
        answers.reduce<Record<string, number>>((acc, a) => {
          const key = `${a.status === 0 ? 'connection' : a.status}${a.code === '' ? '' : ` ${a.code}`}${a.retryAfter === null ? '' : ` (Retry-After ${a.retryAfter})`}`
          acc[key] = (acc[key] ?? 0) + 1
          return acc
        }, {}),
      )
        .map(([k, n]) => `${n} × ${k}`)
        .join(', ')
    /** Waits (up to 30 s) for a restart to finish, then sends a small request. */
    const afterwards = async (model: string) => {
      // A runner killed for memory ends when the kernel has freed it, after the answer.
      await new Promise((r) => setTimeout(r, 1000))
      for (let i = 0; i < 300 && !(await state(model)).startsWith('deployed/ready'); i++) {
        await new Promise((r) => setTimeout(r, 100))
      }
      const next = await infer(model, small)
      return `state ${await state(model)}, next small request ${next.status}`
    }

    const { body, rows } = bigJsonBody(MB)
    console.log(`Request: ${(body.length / 1e6).toFixed(1)} MB of JSON, x [${rows}, 4] FP32\n`)

    const one = await watched(() => infer('mlp', body))
    console.log(`1. one request: ${tally([one.result])}`)
    console.log(`   server RSS ${one.rss}; /healthz ${one.healthz}`)
    console.log(`   then: ${await afterwards('mlp')}\n`)

    const many = await watched(() =>
      Promise.all(Array.from({ length: CONCURRENT }, () => infer('mlp', body))),
    )
    console.log(`2. ${CONCURRENT} at once: ${tally(many.result)}`)
    console.log(`   server RSS ${many.rss}; /healthz ${many.healthz}`)
    console.log(`   then: ${await afterwards('mlp')}\n`)

    const a = { name: 'a', shape: [40000, 1], datatype: 'FP32', data: new Array(40000).fill(1) }
    const b = { name: 'b', shape: [1, 40000], datatype: 'FP32', data: new Array(40000).fill(1) }
    const matmul = await watched(() => infer('matmul', JSON.stringify({ inputs: [a, b] })))
    console.log(`3. [40000,1]·[1,40000] matmul: ${tally([matmul.result])}`)
    console.log(`   server RSS ${matmul.rss}; /healthz ${matmul.healthz}`)
    const next = await infer(
      'matmul',
      JSON.stringify({
        inputs: [
          { ...a, shape: [1, 1], data: [2] },
          { ...b, shape: [1, 1], data: [3] },
        ],
      }),
    )
    console.log(`   then: state ${await state('matmul')}, next small request ${next.status}`)
    // Idle decode threads end after 10 s, and their heaps go back to the system.
    await new Promise((r) => setTimeout(r, 15_000))
    console.log(`\n4. 15 s later: server RSS ${((await status(pid)).rss / MIB).toFixed(0)} MiB`)
  } finally {
    if (process.env.BENCH_LOG !== undefined) {
      console.log(
        server
          .output()
          .split('\n')
          .filter((l) => /deployment|runner|refused/.test(l))
          .map((l) => l.slice(0, 260))
          .join('\n'),
      )
    }
    await server.stop()
    await dir.remove()
  }
}

await main()
