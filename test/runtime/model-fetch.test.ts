import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { runnerEnvironment } from '../../src/config/scheduler-config.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ToWorker } from '../../src/runtime/worker-protocol.js'
import { TORCH_WORKER } from '../../src/scheduler/local/torch-python.js'
import { WorkerProcess } from '../../src/scheduler/local/worker-process.js'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { makeTorchFixtures, SYSTEM_PYTHON, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

/**
 * Runners that cannot see berth's files (containers on other machines, BERTH_RUNNER_FILES=fetch)
 * fetch the model's archive from a presigned URL, check it against the recorded SHA-256, unpack
 * it as an upload is unpacked, serve from it, and remove it when the model goes. Here the URL is
 * a plain HTTP server's and the runners are processes; the containers' own test runs it on S3.
 */

const RUNNER = fileURLToPath(new URL('../../src/runtime/worker-main.js', import.meta.url))
const OPTIONS = { startTimeoutMs: 60_000, killGraceMs: 500, maxFrameBytes: 1 << 30 }
/** berth's folder of the model, as the load names it: nothing is there on the runner's side. */
const ROOT = '/srv/berth/models/ns_fetch/up_fetch'
const LIMITS = {
  maxEntries: 100,
  maxUnpackedBytes: 1 << 30,
  maxCompressionRatio: 1000,
  ratioGraceBytes: 1 << 20,
}
type Load = Omit<Extract<ToWorker, { type: 'load' }>, 'id'>
const f32 = (values: readonly number[]) => new Uint8Array(Float32Array.from(values).buffer)
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')

describe('runners that fetch their model', async () => {
  const torchSkip = await torchSkipReason()
  let dir: Awaited<ReturnType<typeof tempDir>>
  let server: Server
  let base = ''
  let scratch = ''
  /** The archives the server offers, by path; anything else is 403, as an expired URL is. */
  const archives = new Map<string, Buffer>()
  let onnxArchive: Buffer

  before(async () => {
    dir = await tempDir()
    scratch = join(dir.path, 'scratch')
    await mkdir(scratch)
    // One wrapping folder, as most archives have: unpacking strips it, as an upload does.
    onnxArchive = await tarGzOf({ 'mlp/model.onnx': mlpModel(4, 8, 3, 7) })
    archives.set('/onnx.tar.gz', onnxArchive)
    server = createServer((request, response) => {
      const archive = archives.get(new URL(request.url ?? '/', 'http://x').pathname)
      if (archive === undefined) response.writeHead(403).end('Request has expired')
      else response.writeHead(200, { 'content-type': 'application/gzip' }).end(archive)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    await new Promise((resolve) => server.close(resolve))
    await dir.remove()
  })

  const order = (path: string, archive: Buffer, sha = sha256(archive)) => ({
    url: `${base}${path}?X-Amz-Signature=s3cr3tsignature`,
    sha256: sha,
    root: ROOT,
    maxArchiveBytes: 1 << 30,
    limits: LIMITS,
  })
  const loadOf = (modelPath: string, archive: ReturnType<typeof order>): Load => ({
    type: 'load',
    slot: 0,
    modelPath,
    intraOpThreads: 1,
    archive,
  })
  const onnxRunner = () =>
    WorkerProcess.start({
      ...OPTIONS,
      entry: RUNNER,
      args: ['onnx'],
      env: { BERTH_RUNNER_SCRATCH: scratch },
    })

  it('the ONNX runner downloads, checks and unpacks the archive, serves it, removes it on unload', async () => {
    const worker = await onnxRunner()
    try {
      const loaded = await worker.call(
        loadOf(`${ROOT}/model.onnx`, order('/onnx.tar.gz', onnxArchive)),
        30_000,
      )
      assert.equal(loaded.type, 'loaded')
      assert.equal((await readdir(scratch)).length, 1, 'the model is unpacked in the scratch dir')
      const x = [0.5, -1, 2, 0.25]
      const result = await worker.call(
        {
          type: 'infer',
          slot: 0,
          inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: f32(x) }],
          outputs: null,
        },
        10_000,
      )
      assert.equal(result.type, 'result')
      if (result.type !== 'result') return
      const y = result.outputs[0]?.data ?? new Uint8Array()
      const got = Array.from(new Float32Array(Uint8Array.from(y).buffer))
      const want = referenceMlp(x, 1, 4, 8, 3, 7)
      assert.equal(got.length, want.length)
      for (const [i, v] of want.entries()) assert.ok(Math.abs((got[i] ?? Number.NaN) - v) < 1e-5)
      assert.equal((await worker.call({ type: 'unload', slot: 0 }, 5000)).type, 'unloaded')
      assert.deepEqual(await readdir(scratch), [])
    } finally {
      await worker.stop()
    }
  })

  it('refuses another archive, a refused download and a file outside the model; keeps nothing', async () => {
    const worker = await onnxRunner()
    try {
      const refusals: ReadonlyArray<readonly [Load, string, RegExp]> = [
        [
          loadOf(`${ROOT}/model.onnx`, order('/onnx.tar.gz', onnxArchive, 'ab'.repeat(32))),
          'stored_archive_corrupt',
          /not the ababab/,
        ],
        [
          loadOf(`${ROOT}/model.onnx`, order('/expired.tar.gz', onnxArchive)),
          'model_load_failed',
          /HTTP 403/,
        ],
        [
          loadOf('/etc/passwd', order('/onnx.tar.gz', onnxArchive)),
          'model_load_failed',
          /outside the model's folder/,
        ],
        [
          // Under the folder by its name, outside it once resolved.
          loadOf(`${ROOT}/../../../../etc/passwd`, order('/onnx.tar.gz', onnxArchive)),
          'model_load_failed',
          /outside the model's folder/,
        ],
        [
          loadOf(`${ROOT}/missing.onnx`, order('/onnx.tar.gz', onnxArchive)),
          'model_load_failed',
          /missing\.onnx/,
        ],
      ]
      for (const [load, code, message] of refusals) {
        await assert.rejects(worker.call(load, 30_000), (err: Error) => {
          assert.ok(isBerthError(err, code as 'model_load_failed'), `${code}: ${err.message}`)
          assert.match(err.message, message)
          // The URL's signature is a credential, and the runner's folders are its own.
          assert.doesNotMatch(err.message, /s3cr3tsignature|scratch/)
          return true
        })
        assert.deepEqual(await readdir(scratch), [], `nothing is left after ${code}`)
      }
      assert.equal(worker.failure, undefined, 'the runner serves on')
    } finally {
      await worker.stop()
    }
  })

  it('the python torch runner fetches with the same fetcher', { skip: torchSkip }, async () => {
    const fixtures = join(dir.path, 'torch')
    await makeTorchFixtures(fixtures)
    const archive = await tarGzOf({ 'model.pt': await readFile(join(fixtures, 'mlp_scripted.pt')) })
    archives.set('/torch.tar.gz', archive)
    const expected = JSON.parse(
      await readFile(join(fixtures, 'mlp_scripted.expected.json'), 'utf8'),
    ) as { input: number[]; output_hex: string }
    const worker = await WorkerProcess.start({
      ...OPTIONS,
      entry: TORCH_WORKER,
      executable: SYSTEM_PYTHON,
      // What berth gives runners: the fetcher is Node's, found on PATH as in berth's torch image,
      // and the BLAS variables (OPENBLAS_CORETYPE picks the kernels, so the very bits) are the
      // ones the reference output was computed under.
      env: { ...runnerEnvironment(process.env), BERTH_RUNNER_SCRATCH: scratch },
    })
    try {
      await assert.rejects(
        worker.call(
          loadOf(`${ROOT}/model.pt`, order('/torch.tar.gz', archive, '0'.repeat(64))),
          30_000,
        ),
        (err) => isBerthError(err, 'stored_archive_corrupt'),
      )
      assert.deepEqual(await readdir(scratch), [])
      await assert.rejects(
        worker.call(loadOf(`${ROOT}/../outside.pt`, order('/torch.tar.gz', archive)), 30_000),
        (err) => isBerthError(err, 'model_load_failed') && /outside the model/.test(err.message),
      )
      assert.deepEqual(await readdir(scratch), [])
      const loaded = await worker.call(
        loadOf(`${ROOT}/model.pt`, order('/torch.tar.gz', archive)),
        60_000,
      )
      assert.equal(loaded.type, 'loaded')
      assert.equal((await readdir(scratch)).length, 1)
      const result = await worker.call(
        {
          type: 'infer',
          slot: 0,
          inputs: [
            { name: 'input__0', datatype: 'FP32', shape: [2, 16], data: f32(expected.input) },
          ],
          outputs: null,
        },
        30_000,
      )
      assert.equal(result.type, 'result')
      if (result.type !== 'result') return
      assert.equal(Buffer.from(result.outputs[0]?.data ?? []).toString('hex'), expected.output_hex)
      assert.equal((await worker.call({ type: 'unload', slot: 0 }, 5000)).type, 'unloaded')
      assert.deepEqual(await readdir(scratch), [])
    } finally {
      await worker.stop()
    }
  })
})
