/**
 * Upload benchmark: streams a generated model archive through a real `berth serve` process and
 * reports throughput and the server's memory (RSS after start, peak RSS from /proc's VmHWM).
 *
 *   npm run bench:upload -- [GiB ...]        (default: 1)
 *   BENCH_BERTH_BIN=/tmp/before/bin/berth …    (another build of berth measured: berth-under-test.ts)
 *
 * The archive is a safetensors model whose one tensor is random bytes (incompressible, like real
 * weights), packed in a .tar.gz. The upload goes through `berth upload`, so the client streams
 * from disk as a user's would. Timings include the whole server path: one pass over the body
 * (to disk with SHA-256, and inspected and extracted as it arrives), validate, store the
 * archive, record the model.
 */
import { randomFillSync } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { pack } from 'tar-stream'
import { runBerth, startBerthServe } from '../test/helpers/berth-process.js'
import { BERTH_UNDER_TEST } from './berth-under-test.js'

const GIB = 1024 ** 3
const CHUNK = 4 * 1024 * 1024

/** A .tar.gz holding `model.safetensors` with one U8 tensor of `bytes` random bytes. */
async function writeArchive(path: string, bytes: number): Promise<void> {
  let header = Buffer.from(
    JSON.stringify({ weights: { dtype: 'U8', shape: [bytes], data_offsets: [0, bytes] } }),
  )
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)])
  const prefix = Buffer.alloc(8)
  prefix.writeBigUInt64LE(BigInt(header.length))
  const tar = pack()
  const done = pipeline(tar, createGzip({ level: 1 }), createWriteStream(path))
  // Node's stream typing for tar-stream's (streamx) entry sink.
  const entry = tar.entry({
    name: 'model/model.safetensors',
    size: 8 + header.length + bytes,
  }) as unknown as NodeJS.WritableStream
  const write = (chunk: Buffer) =>
    new Promise<void>((resolve) =>
      entry.write(chunk) ? resolve() : entry.once('drain', () => resolve()),
    )
  await write(Buffer.concat([prefix, header]))
  const block = Buffer.alloc(CHUNK)
  for (let sent = 0; sent < bytes; sent += CHUNK) {
    randomFillSync(block)
    await write(block.subarray(0, Math.min(CHUNK, bytes - sent)))
  }
  entry.end()
  tar.finalize()
  await done
}

async function memoryOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (field: string) =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
  return { rss: kib('VmRSS'), peak: kib('VmHWM') }
}

async function benchmark(gib: number): Promise<Record<string, string | number>> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-'))
  try {
    const archive = join(dir, 'model.tar.gz')
    await writeArchive(archive, Math.round(gib * GIB))
    const size = (await stat(archive)).size
    const key = 'sk_bench_upload_0123456789abcdef'
    const server = await startBerthServe(
      {
        BERTH_DATA_DIR: join(dir, 'data'),
        BERTH_BOOTSTRAP_API_KEY: key,
        BERTH_MAX_ARCHIVE_BYTES: String(16 * GIB),
      },
      BERTH_UNDER_TEST,
    )
    try {
      const pid = server.child.pid ?? 0
      await fetch(`${server.url}/v1/namespaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ namespace_name: 'bench' }),
      })
      const before = await memoryOf(pid)
      const started = process.hrtime.bigint()
      const run = await runBerth(
        [
          'upload',
          archive,
          '--namespace',
          'bench',
          '--name',
          'big',
          '--version',
          '1.0.0',
          '--format',
          'safetensors',
        ],
        { BERTH_URL: server.url, BERTH_API_KEY: key, BERTH_DATA_DIR: join(dir, 'client') },
        { timeoutMs: 600_000, bin: BERTH_UNDER_TEST },
      )
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      if (run.code !== 0) throw new Error(`upload failed: ${run.stderr}`)
      const after = await memoryOf(pid)
      return {
        archive_gib: Number((size / GIB).toFixed(2)),
        seconds: Number(seconds.toFixed(2)),
        mb_per_s: Number((size / 1e6 / seconds).toFixed(0)),
        server_rss_start_mib: Math.round(before.rss / 2 ** 20),
        server_peak_rss_mib: Math.round(after.peak / 2 ** 20),
        server_growth_mib: Math.round((after.peak - before.rss) / 2 ** 20),
      }
    } finally {
      await server.stop()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0)
console.log(
  JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    memory_gib: Math.round(totalmem() / GIB),
    berth: BERTH_UNDER_TEST,
  }),
)
for (const gib of sizes.length > 0 ? sizes : [1]) console.log(JSON.stringify(await benchmark(gib)))
