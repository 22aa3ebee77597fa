import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import {
  buildImage,
  type DockerForTests,
  docker,
  dockerForTests,
  dockerOk,
  httpRequest,
  removeImage,
  testTag,
  waitUntil,
} from '../helpers/docker.js'
import { type FormPart, multipartBody } from '../helpers/multipart.js'
import { REPO_ROOT, readRepoFile } from '../helpers/repo.js'
import {
  listBucket,
  postgresForTests,
  s3ForTests,
  testBucket,
  testSchemas,
} from '../helpers/services.js'

// The images berth ships, built from the repository and run in a real engine: the server
// (Dockerfile) answering the README's walk-through from inside its container, and the two
// runner images (docker/). Skipped without an engine (see test/helpers/docker.ts).

const found = await dockerForTests()
const skip = 'skip' in found ? found.skip : false
const KEY = `sk_${randomBytes(16).toString('hex')}`
const EXAMPLE = join(REPO_ROOT, 'examples/tiny-mlp')

function engine(): DockerForTests {
  if ('skip' in found) throw new Error(found.skip)
  return found
}

/** The README's example folder packed as its walk-through packs it: `tar -czf … -C … .` */
async function packedExample(): Promise<Buffer> {
  const { stdout } = await promisify(execFile)('tar', ['-czf', '-', '-C', EXAMPLE, '.'], {
    encoding: 'buffer',
  })
  return stdout
}

/** The README shows this answer (a `"data":[…]` array of its walk-through). */
function assertShownInReadme(readme: string, data: readonly number[], what: string): void {
  assert.ok(readme.includes(`"data":[${data.join(',')}]`), `README shows ${what}: ${data}`)
}

/**
 * The README's walk-through against a server at `base`: a namespace, the example model uploaded
 * (packed as the README packs it) and deployed, then both inferences, whose answers must be the
 * ones the README shows. Resolves the upload's answer.
 */
async function readmeWalkThrough(base: string, key: string): Promise<Record<string, unknown>> {
  const readme = await readRepoFile('README.md')
  const auth = { authorization: `Bearer ${key}` }
  const created = await httpRequest(`${base}/v1/namespaces`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ namespace_name: 'production', description: 'live traffic' }),
  })
  assert.equal(created.status, 200, created.body)
  assert.equal(JSON.parse(created.body).namespace_name, 'production')

  const parts: FormPart[] = [
    { name: 'file', filename: 'model.tar.gz', content: await packedExample() },
    { name: 'name', value: 'tiny-mlp' },
    { name: 'version', value: '1.0.0' },
    { name: 'model_format', value: 'onnx' },
    { name: 'memory_gb', value: '0.5' },
  ]
  const { payload, headers } = multipartBody(parts)
  const uploaded = await httpRequest(
    `${base}/v1/namespaces/production/models?wait=true`,
    { method: 'POST', headers: { ...auth, ...headers }, body: payload },
    120_000,
  )
  assert.equal(uploaded.status, 200, uploaded.body)
  const upload = JSON.parse(uploaded.body)
  assert.equal(upload.model_id, 'tiny-mlp_1_0_0')
  assert.equal(upload.deployment_status, 'deployed', uploaded.body)

  const inferred = await httpRequest(
    `${base}/v1/namespaces/production/models/tiny-mlp_1_0_0/infer`,
    {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        inputs: [
          {
            name: 'x',
            shape: [2, 4],
            datatype: 'FP32',
            data: [
              [1, 2, 3, 4],
              [0.5, -1, 0, 2],
            ],
          },
        ],
      }),
    },
  )
  assert.equal(inferred.status, 200, inferred.body)
  assertShownInReadme(readme, JSON.parse(inferred.body).outputs[0].data, 'the batch of two')

  const v2 = await httpRequest(`${base}/v2/models/tiny-mlp/infer`, {
    method: 'POST',
    headers: { ...auth, 'x-namespace': 'production', 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    }),
  })
  assert.equal(v2.status, 200, v2.body)
  assertShownInReadme(readme, JSON.parse(v2.body).outputs[0].data, 'the /v2 answer')
  return upload
}

describe('the server image (Dockerfile)', { skip, timeout: 20 * 60_000 }, () => {
  const tag = testTag('server')
  const container = `berth-test-server-${randomBytes(4).toString('hex')}`
  let base = ''

  before(async () => {
    await buildImage(engine(), 'Dockerfile', tag)
    // Only what a user would give: a published port, the container's limits and a BERTH_*
    // variable.
    await dockerOk([
      'run',
      '--detach',
      '--name',
      container,
      '--cpus',
      '1.5',
      '--memory',
      '3g',
      '--publish',
      '127.0.0.1::8080',
      '--env',
      `BERTH_BOOTSTRAP_API_KEY=${KEY}`,
      tag,
    ])
    const published = (await dockerOk(['port', container, '8080/tcp'])).trim().split('\n')[0]
    base = `http://${published}`
    try {
      await waitUntil(
        'the server answers /healthz',
        async () => (await httpRequest(`${base}/healthz`, {}, 2000)).status === 200,
        60_000,
      )
    } catch (err) {
      const logs = await docker(['logs', container])
      throw new Error(`${(err as Error).message}\n${logs.output.slice(-4000)}`)
    }
  })

  after(async () => {
    // --volumes: the anonymous volume of BERTH_DATA_DIR goes with the container.
    await docker(['rm', '--force', '--volumes', container])
    await removeImage(tag)
  })

  it("answers the README's walk-through: namespace, upload, inference", async () => {
    await readmeWalkThrough(base, KEY)
  })

  it('serves the web console, built in the image', async () => {
    const page = await httpRequest(`${base}/console/`)
    assert.equal(page.status, 200, page.body)
    assert.match(page.body, /<script type="module" src="\/console\/console.js">/)
    const script = await httpRequest(`${base}/console/console.js`)
    assert.equal(script.status, 200)
    assert.ok(script.body.length > 10_000, `console.js is ${script.body.length} bytes`)
  })

  it('is reported healthy by its HEALTHCHECK', async () => {
    let health = { Status: '', Log: [] as { Output: string }[] }
    await waitUntil(
      'docker inspect reports the container healthy',
      async () => {
        health = JSON.parse(
          await dockerOk(['inspect', '--format', '{{json .State.Health}}', container]),
        )
        // Unhealthy is where a check that keeps failing ends up: no need to wait more.
        return health.Status === 'healthy' || health.Status === 'unhealthy'
      },
      90_000,
      1000,
    )
    assert.equal(health.Status, 'healthy', JSON.stringify(health.Log.at(-1)))
  })

  it("offers deployments its container's CPUs and memory, not the host's", async () => {
    const res = await httpRequest(`${base}/v1/node`, {
      headers: { authorization: `Bearer ${KEY}` },
    })
    assert.equal(res.status, 200, res.body)
    const { node } = JSON.parse(res.body) as { node: { cpus: number; memory_bytes: number } }
    // 1.5 CPUs times the default overcommit of 4; the memory limit whole.
    assert.equal(node.cpus, 1.5 * 4)
    assert.equal(node.memory_bytes, 3 * 1024 ** 3)
  })

  it('runs as a user other than root, with its data in the volume', async () => {
    const uid = (await dockerOk(['exec', container, 'id', '-u'])).trim()
    assert.match(uid, /^\d+$/)
    assert.notEqual(uid, '0')
    const mounts = JSON.parse(
      await dockerOk(['inspect', '--format', '{{json .Mounts}}', container]),
    ) as { Type: string; Destination: string }[]
    assert.deepEqual(
      mounts.map((m) => [m.Type, m.Destination]),
      [['volume', '/var/lib/berth']],
    )
    const kept = (await dockerOk(['exec', container, 'ls', '/var/lib/berth'])).split('\n')
    assert.ok(kept.includes('berth.db'), `the SQLite file is in the volume: ${kept}`)
  })

  it('serves from PostgreSQL and S3, configured as docker-compose.yml configures it', async (t) => {
    const postgres = postgresForTests()
    const s3 = s3ForTests()
    if ('skip' in postgres) return t.skip(postgres.skip)
    if ('skip' in s3) return t.skip(s3.skip)
    const schemas = testSchemas(postgres.url)
    const bucket = testBucket()
    // The variables docker-compose.yml gives berth, pointed at the test's servers (and a schema
    // of the test's own in the shared database).
    const stores: Record<string, string> = {
      BERTH_DATABASE_URL: postgres.url,
      BERTH_STORAGE_URL: `s3://${bucket}/archives`,
      BERTH_S3_ENDPOINT: s3.endpoint,
      BERTH_S3_FORCE_PATH_STYLE: 'true',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
    }
    const compose = await readRepoFile('docker-compose.yml')
    for (const name of Object.keys(stores)) {
      assert.match(compose, new RegExp(`^ {6}${name}: `, 'm'), `docker-compose.yml sets ${name}`)
    }
    // The test's servers listen on 127.0.0.1 only: the container shares the host's network.
    const env = {
      ...stores,
      BERTH_DATABASE_SCHEMA: schemas.next(),
      BERTH_HOST: '127.0.0.1',
      BERTH_PORT: '0',
      BERTH_LOG_LEVEL: 'info',
      BERTH_BOOTSTRAP_API_KEY: KEY,
    }
    const name = `berth-test-stores-${randomBytes(4).toString('hex')}`
    try {
      const args = ['run', '--detach', '--name', name, '--network', 'host']
      for (const [key, value] of Object.entries(env)) args.push('--env', `${key}=${value}`)
      await dockerOk([...args, tag])
      let listening = ''
      await waitUntil(
        'the server listens',
        async () => {
          const logs = (await docker(['logs', name])).output
          listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(logs)?.[1] ?? ''
          return listening !== ''
        },
        60_000,
      ).catch(async (err: Error) => {
        throw new Error(`${err.message}\n${(await docker(['logs', name])).output.slice(-4000)}`)
      })
      const upload = await readmeWalkThrough(listening, KEY)
      assert.match(String(upload.model_archive_url), new RegExp(`^s3://${bucket}/archives/`))
      assert.equal((await listBucket(s3, bucket)).length, 1)
    } finally {
      await docker(['rm', '--force', '--volumes', name])
      await schemas.dropAll()
    }
  })
})

describe('the runner images (docker/)', { skip, timeout: 20 * 60_000 }, () => {
  let readme = ''
  before(async () => {
    readme = await readRepoFile('README.md')
  })

  it("berth-runtime-onnx: ONNX Runtime runs the README's model; only the runner's code", async () => {
    const tag = testTag('runtime-onnx')
    try {
      await buildImage(engine(), 'docker/runtime-onnx.Dockerfile', tag)
      // The model arrives on stdin: the check needs no mount.
      const run = `
        const ort = require('onnxruntime-node')
        const chunks = []
        process.stdin.on('data', (c) => chunks.push(c)).on('end', async () => {
          const session = await ort.InferenceSession.create(Buffer.concat(chunks))
          const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4])
          const { y } = await session.run({ x })
          process.stdout.write(JSON.stringify(Array.from(y.data)))
        })`
      const model = await readFile(join(EXAMPLE, 'model.onnx'))
      const answer = await dockerOk(['run', '--rm', '--interactive', tag, 'node', '-e', run], {
        input: model,
      })
      assertShownInReadme(readme, JSON.parse(answer), 'the /v2 answer')

      // Every module of the runner loads (the two programs, the runner and its model fetcher,
      // open their channel or read stdin at once).
      const load = `
        const programs = ['runtime/worker-main.js', 'runtime/fetch-model-main.js']
        const files = require('node:fs').readdirSync('dist', { recursive: true })
          .filter((f) => f.endsWith('.js') && !programs.includes(f)).sort()
        Promise.all(files.map((f) => import('/app/dist/' + f)))
          .then(() => console.log(JSON.stringify({
            files, packages: require('node:fs').readdirSync('node_modules') })))`
      const { files, packages } = JSON.parse(
        await dockerOk(['run', '--rm', tag, 'node', '-e', load]),
      ) as { files: string[]; packages: string[] }
      assert.ok(files.includes('runtime/onnx/onnx-model-runtime.js'), String(files))
      assert.ok(files.includes('runtime/worker-protocol.js'), String(files))
      assert.ok(files.includes('runtime/model-fetch.js'), String(files))
      // None of the server: no routes, no stores, none of their packages.
      assert.deepEqual(
        files.filter((f) => /^(http|metadata|registry|scheduler|deployments)\//.test(f)),
        [],
      )
      assert.ok(packages.includes('onnxruntime-node'), String(packages))
      for (const server of ['fastify', 'better-sqlite3', 'pg', '@aws-sdk']) {
        assert.ok(!packages.includes(server), `${server} is not in the runner image`)
      }
      assert.equal(
        (await dockerOk(['image', 'inspect', '--format', '{{json .Config.Cmd}}', tag])).trim(),
        '["node","dist/runtime/worker-main.js"]',
      )
      assert.notEqual((await dockerOk(['run', '--rm', tag, 'id', '-u'])).trim(), '0')
    } finally {
      await removeImage(tag)
    }
  })

  it("berth-runtime-torch: Debian's torch with OpenBLAS, and berth's python runner", async () => {
    const tag = testTag('runtime-torch')
    const onnxTag = testTag('runtime-onnx-for-torch')
    try {
      // The torch image is the onnx one plus torch (its runner fetches models with Node's code).
      await buildImage(engine(), 'docker/runtime-onnx.Dockerfile', onnxTag)
      await buildImage(engine(), 'docker/runtime-torch.Dockerfile', tag, [
        `RUNTIME_ONNX_IMAGE=${onnxTag}`,
      ])
      const check = [
        'import ast, glob, os, torch',
        'ast.parse(open("python/torch_worker.py").read())',
        'blas = [os.path.realpath(p) for p in glob.glob("/usr/lib/*/libblas.so.3")]',
        'product = (torch.ones(2, 3) @ torch.ones(3, 2)).tolist()',
        'fetcher = os.path.isfile("dist/runtime/fetch-model-main.js")',
        'print(__import__("json").dumps({"blas": blas, "product": product, "uid": os.getuid(), "fetcher": fetcher}))',
      ].join('\n')
      const { blas, product, uid, fetcher } = JSON.parse(
        await dockerOk(['run', '--rm', tag, 'python3', '-c', check]),
      ) as { blas: string[]; product: number[][]; uid: number; fetcher: boolean }
      assert.ok(fetcher, "the python runner's model fetcher is in the image")
      assert.deepEqual(product, [
        [3, 3],
        [3, 3],
      ])
      assert.ok(
        blas.length > 0 && blas.every((p) => p.includes('openblas')),
        `BLAS is OpenBLAS: ${blas}`,
      )
      assert.notEqual(uid, 0)
      assert.equal(
        (await dockerOk(['image', 'inspect', '--format', '{{json .Config.Cmd}}', tag])).trim(),
        '["python3","python/torch_worker.py"]',
      )
    } finally {
      await removeImage(tag)
      await removeImage(onnxTag)
    }
  })
})
