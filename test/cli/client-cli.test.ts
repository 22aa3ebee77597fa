import assert from 'node:assert/strict'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { runBerth, type ServeProcess, startBerthServe } from '../helpers/berth-process.js'
import { eventually, isGone } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('berth ls, deploy, undeploy, infer (against a running berth serve)', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let server: ServeProcess
  let env: Record<string, string>
  const berth = (...args: string[]) => runBerth(args, env)
  /** As scripts call it: JSON on stdout (and errors as JSON on stderr). */
  const berthJson = (...args: string[]) => runBerth([...args, '--json'], env)
  const x = [1, 2, 3, 4, -1, -2, -3, -4, 0.5, 0.5, 0.5, 0.5, 0, 0, 0, 1]

  before(async () => {
    dir = await tempDir()
    const key = 'sk_cli_client_test_key_0123456789'
    server = await startBerthServe({
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: key,
    })
    env = { BERTH_DATA_DIR: join(dir.path, 'client'), BERTH_URL: server.url, BERTH_API_KEY: key }
    const res = await fetch(`${server.url}/v1/namespaces`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ namespace_name: 'cli' }),
    })
    assert.equal(res.status, 200)
    await writeFile(join(dir.path, 'model.tar.gz'), await tarGzOf({ 'model.onnx': mlpModel() }))
    const upload = await berth(
      'upload',
      join(dir.path, 'model.tar.gz'),
      '--namespace',
      'cli',
      '--name',
      'cli-mlp',
      '--version',
      '1.0.0',
      '--format',
      'onnx',
      '--memory-gb',
      '0.5',
      '--no-deploy',
    )
    assert.equal(upload.code, 0, upload.stderr)
  })
  after(async () => {
    await server.stop()
    await dir.remove()
  })

  it('deploys, lists, infers and undeploys, printing JSON', async () => {
    const deploy = await berthJson('deploy', 'cli', 'cli-mlp_1_0_0', '--wait')
    assert.equal(deploy.code, 0, deploy.stderr)
    assert.equal(JSON.parse(deploy.stdout).deployment_status, 'deployed')
    // Each state change as it happened, on stderr: from the request to ready.
    const changes = deploy.stderr.trim().split('\n')
    assert.match(changes[0] ?? '', /^(pending \(deploy_requested\)|loading \(loading_model\))$/)
    assert.equal(changes.at(-1), 'deployed (ready)')

    const ls = await berthJson('ls', 'cli')
    assert.equal(ls.code, 0, ls.stderr)
    assert.deepEqual(
      JSON.parse(ls.stdout).models.map((m: { model_id: string; deployed: boolean }) => [
        m.model_id,
        m.deployed,
      ]),
      [['cli-mlp_1_0_0', true]],
    )

    const request = { inputs: [{ name: 'x', shape: [1, 16], datatype: 'FP32', data: x }] }
    const inline = await berthJson(
      'infer',
      'cli',
      'cli-mlp_1_0_0',
      '--data',
      JSON.stringify(request),
    )
    assert.equal(inline.code, 0, inline.stderr)
    const [y] = JSON.parse(inline.stdout).outputs
    const want = referenceMlp(x, 1, 16, 32, 4, 1)
    assert.ok(y.data.every((v: number, i: number) => Math.abs(v - (want[i] as number)) < 1e-5))

    await writeFile(join(dir.path, 'request.json'), JSON.stringify(request))
    const fromFile = await berthJson(
      'infer',
      'cli',
      'cli-mlp_1_0_0',
      '--file',
      join(dir.path, 'request.json'),
    )
    assert.equal(fromFile.stdout, inline.stdout)

    // The node and the deployment on it: a table for people, JSON when asked.
    const status = await berth('status')
    assert.equal(status.code, 0, status.stderr)
    const [nodeLine, , header, row] = status.stdout.split('\n')
    assert.match(
      nodeLine ?? '',
      /^node: \d+(\.\d+)?\/\d+(\.\d+)? CPUs reserved, \d+ MiB\/\d+ MiB memory/,
    )
    assert.match(
      header ?? '',
      /^NAMESPACE +MODEL +STATE +REASON +POLICY +REPLICAS +RESIDENT +LAST USED$/,
    )
    assert.match(row ?? '', /^cli +cli-mlp_1_0_0 +deployed +ready +on_demand +1 +\d+ MiB +20\d\d-/)
    const json = await berth('status', '--json')
    assert.equal(JSON.parse(json.stdout).deployments[0].model_id, 'cli-mlp_1_0_0')

    const undeploy = await berthJson('undeploy', 'cli', 'cli-mlp_1_0_0')
    assert.equal(undeploy.code, 0, undeploy.stderr)
    assert.equal(JSON.parse(undeploy.stdout).deployment_status, 'not_deployed')
    const refused = await berthJson(
      'infer',
      'cli',
      'cli-mlp_1_0_0',
      '--data',
      JSON.stringify(request),
    )
    assert.equal(refused.code, 1)
    assert.equal(JSON.parse(refused.stderr).error.code, 'model_not_ready')
  })

  it('answers usage errors with exit code 2', async () => {
    for (const args of [
      ['deploy', 'cli'],
      ['infer', 'cli', 'm', '--data', '{'],
      ['ls', '--bogus'],
    ]) {
      const run = await berthJson(...args)
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
      assert.equal(JSON.parse(run.stderr).error.code, 'cli_usage_invalid')
    }
  })

  it('stops its runners when the server stops', async () => {
    const deploy = await berthJson('deploy', 'cli', 'cli-mlp_1_0_0', '--wait')
    assert.equal(JSON.parse(deploy.stdout).deployment_status, 'deployed')
    const runDir = join(dir.path, 'data', 'run')
    // The model's runner and the spare started in its place (BERTH_SPARE_RUNNERS=1).
    await eventually(async () => (await readdir(runDir)).length === 2)
    const pids = (await readdir(runDir)).map(Number)
    assert.equal(await server.stop('SIGTERM'), 0)
    assert.ok(pids.every(isGone))
  })
})
