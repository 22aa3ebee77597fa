import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { runBerth, type ServeProcess, startBerthServe } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('berth upload', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let server: ServeProcess
  let key: string
  let clientEnv: Record<string, string>

  before(async () => {
    dir = await tempDir()
    key = 'sk_cli_upload_test_key_0123456789'
    server = await startBerthServe({
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: key,
    })
    // The client runs elsewhere: its own data dir, the server's URL and key from the environment.
    clientEnv = {
      BERTH_DATA_DIR: join(dir.path, 'client'),
      BERTH_URL: server.url,
      BERTH_API_KEY: key,
    }
    const res = await fetch(`${server.url}/v1/namespaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'cli-space' }),
    })
    assert.equal(res.status, 200)
    const model = join(dir.path, 'my-model')
    await mkdir(join(model, 'extra'), { recursive: true })
    await writeFile(join(model, 'model.onnx'), mlpModel())
    await writeFile(join(model, 'extra', 'notes.txt'), 'packed on the fly')
    await writeFile(join(dir.path, 'model.tar.gz'), await tarGzOf({ 'model.onnx': mlpModel() }))
  })
  after(async () => {
    await server.stop()
    await dir.remove()
  })

  const upload = (...args: string[]) =>
    runBerth(
      ['upload', ...args, '--namespace', 'cli-space', '--format', 'onnx', '--json'],
      clientEnv,
    )

  it('packs and streams a directory, printing the JSON answer', async () => {
    const run = await upload(
      join(dir.path, 'my-model'),
      '--name',
      'from-dir',
      '--version',
      '1.0.0',
      '--task-type',
      'embedding',
    )
    assert.equal(run.code, 0, run.stderr)
    const answer = JSON.parse(run.stdout)
    assert.equal(answer.success, true)
    assert.equal(answer.model_id, 'from-dir_1_0_0')
    // Not a terminal: no progress bar.
    assert.equal(run.stderr, '')

    const detail = await fetch(`${server.url}/v1/namespaces/cli-space/models/from-dir_1_0_0`, {
      headers: { authorization: `Bearer ${key}` },
    })
    const model = (
      (await detail.json()) as {
        model: { task_type: string; manifest: { files: { path: string }[] } }
      }
    ).model
    assert.equal(model.task_type, 'embedding')
    assert.deepEqual(
      model.manifest.files.map((f) => f.path),
      ['extra/notes.txt', 'model.onnx'],
    )
  })

  it('streams a .tar.gz with flags overriding the environment', async () => {
    const run = await runBerth(
      [
        'upload',
        join(dir.path, 'model.tar.gz'),
        '--namespace',
        'cli-space',
        '--name',
        'from-tgz',
        '--version',
        '2.1.0',
        '--format',
        'onnx',
        '--no-deploy',
        '--url',
        server.url,
        '--api-key',
        key,
        '--json',
      ],
      { BERTH_DATA_DIR: join(dir.path, 'client'), BERTH_API_KEY: 'sk_wrong_key_000000000000000' },
    )
    assert.equal(run.code, 0, run.stderr)
    assert.equal(JSON.parse(run.stdout).model_id, 'from-tgz_2_1_0')
    assert.equal(JSON.parse(run.stdout).deployment_status, 'not_deployed')
  })

  it("prints the server's error envelope and exits 1 when refused", async () => {
    const again = await upload(
      join(dir.path, 'model.tar.gz'),
      '--name',
      'from-tgz',
      '--version',
      '2.1.0',
    )
    assert.equal(again.code, 1)
    assert.equal(again.stdout, '')
    assert.equal(JSON.parse(again.stderr).error.code, 'model_already_exists')

    const badKey = await runBerth(
      [
        'upload',
        join(dir.path, 'model.tar.gz'),
        '--namespace',
        'cli-space',
        '--name',
        'x-model',
        '--version',
        '1.0.0',
        '--format',
        'onnx',
        '--json',
      ],
      { ...clientEnv, BERTH_API_KEY: 'sk_not_a_valid_key_0000000000' },
    )
    assert.equal(badKey.code, 1)
    assert.equal(JSON.parse(badKey.stderr).error.code, 'api_key_invalid')
  })

  it('packs a bare model file into an archive on the way', async () => {
    // It used to be sent as it was, and refused as archive_not_gzip.
    const run = await upload(
      join(dir.path, 'my-model', 'model.onnx'),
      '--name',
      'bare',
      '--version',
      '1.0.0',
      '--no-deploy',
    )
    assert.equal(run.code, 0, run.stderr)
    assert.equal(JSON.parse(run.stdout).model_id, 'bare_1_0_0')
  })

  it('says in one line, with its code, that the server cannot be reached', async () => {
    // A packed upload to nobody used to end in a stack trace (StreamError: Writable stream closed).
    for (const path of [join(dir.path, 'my-model'), join(dir.path, 'model.tar.gz')]) {
      const run = await runBerth(
        [
          'upload',
          path,
          '--namespace',
          'n',
          '--name',
          'gone',
          '--version',
          '1.0.0',
          '--format',
          'onnx',
          '--json',
        ],
        { ...clientEnv, BERTH_URL: 'http://127.0.0.1:9' },
      )
      assert.equal(run.code, 1, run.stderr)
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr)
      assert.equal(JSON.parse(run.stderr).error.code, 'cli_server_unreachable')
    }
  })

  it('exits 2 on usage errors', async () => {
    for (const args of [
      ['upload'],
      [
        'upload',
        join(dir.path, 'nope.tar.gz'),
        '--namespace',
        'n',
        '--name',
        'abc',
        '--version',
        '1.0.0',
        '--format',
        'onnx',
      ],
      [
        'upload',
        join(dir.path, 'model.tar.gz'),
        '--name',
        'abc',
        '--version',
        '1.0.0',
        '--format',
        'onnx',
      ],
    ]) {
      const run = await runBerth([...args, '--json'], clientEnv)
      assert.equal(run.code, 2, args.join(' '))
      assert.equal(JSON.parse(run.stderr).error.code, 'cli_usage_invalid')
    }
  })
})
