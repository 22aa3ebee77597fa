import assert from 'node:assert/strict'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Command } from 'commander'
import { buildProgram } from '../../src/cli/program.js'
import { BERTH_VERSION } from '../../src/version.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { runBerth, type ServeProcess, startBerthServe } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

/** Every command path of the CLI (`upload`, `namespace create`, …), from its own tree. */
function commandPaths(): string[][] {
  const program = buildProgram(
    {
      stdin: process.stdin,
      progress: process.stderr,
      out: () => undefined,
      helpOnError: () => undefined,
    },
    {
      version: '0.0.0-test',
      config: () => {
        throw new Error('unused')
      },
      serve: async () => undefined,
      answered: () => undefined,
    },
  )
  const paths: string[][] = []
  const walk = (command: Command, path: string[]) => {
    for (const sub of command.commands) {
      paths.push([...path, sub.name()])
      walk(sub, [...path, sub.name()])
    }
  }
  walk(program, [])
  return paths
}

describe('the berth CLI can be discovered from --help', () => {
  it('answers --help on every command and subcommand, with examples, and starts nothing', async () => {
    const paths = commandPaths()
    assert.ok(paths.length >= 15, paths.map((p) => p.join(' ')).join(', '))
    for (const path of [[], ...paths]) {
      const run = await runBerth([...path, '--help'], {})
      assert.equal(run.code, 0, `${path.join(' ')}: ${run.stderr}`)
      assert.match(run.stdout, new RegExp(`^Usage: berth ${path.join(' ')}`), path.join(' '))
      // Every command and subcommand shows how it is used.
      assert.match(run.stdout, /Examples:/, path.join(' '))
    }
  })

  it('says its version, and what was meant by a typo', async () => {
    const version = await runBerth(['--version'], {})
    assert.equal(version.stdout.trim(), BERTH_VERSION)
    const typo = await runBerth(['lss', 'demo'], {})
    assert.equal(typo.code, 2)
    assert.match(
      typo.stderr,
      /^berth: cli_usage_invalid: unknown command 'lss' \(Did you mean ls\?\)/,
    )
    const option = await runBerth(['ls', 'demo', '--jsn'], {})
    assert.equal(option.code, 2)
    assert.match(
      option.stderr,
      /unknown option '--jsn' \(Did you mean --json\?\); see berth ls --help$/m,
    )
    assert.equal(option.stderr.trim().split('\n').length, 1, option.stderr)
    // A group without its command shows its help (and nothing else), as a usage error.
    const group = await runBerth(['org'], {})
    assert.equal(group.code, 2)
    assert.match(group.stderr, /^Usage: berth org /)
    assert.doesNotMatch(group.stderr, /cli_usage_invalid/)
    // A file it was given and cannot read: one line with its code, never a stack.
    const missing = await runBerth(
      ['infer', 'demo', 'm_1_0_0', '--file', '/nonexistent/req.json'],
      {
        BERTH_API_KEY: 'sk_unused_key_0123456789abcdef',
      },
    )
    assert.equal(missing.code, 2, missing.stderr)
    assert.match(
      missing.stderr,
      /^berth: cli_usage_invalid: ENOENT: no such file or directory, open '\/nonexistent\/req\.json'\n$/,
    )
    // Numbers are checked before anything is sent.
    const nan = await runBerth(['deploy', 'demo', 'm_1_0_0', '--replicas', 'two'], {})
    assert.equal(nan.code, 2)
    assert.match(
      nan.stderr,
      /option '--replicas <n>' argument 'two' is invalid\. expected a whole number/,
    )
  })
})

describe('berth for people: tables, namespaces, upload --wait, admin with --init', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let server: ServeProcess
  let env: Record<string, string>
  const berth = (...args: string[]) => runBerth(args, env)

  before(async () => {
    dir = await tempDir()
    const key = 'sk_cli_people_test_key_0123456789'
    server = await startBerthServe({
      BERTH_DATA_DIR: join(dir.path, 'data'),
      BERTH_BOOTSTRAP_API_KEY: key,
    })
    env = { BERTH_DATA_DIR: join(dir.path, 'data'), BERTH_URL: server.url, BERTH_API_KEY: key }
    await writeFile(join(dir.path, 'model.onnx'), mlpModel(4, 8, 3, 7))
  })
  after(async () => {
    await server.stop()
    await dir.remove()
  })

  it('creates, lists and deletes namespaces; uploads with --wait and serving flags; lists as a table', async () => {
    const created = await berth('namespace', 'create', 'people', '--description', 'for people')
    assert.equal(created.code, 0, created.stderr)
    assert.match(created.stdout, /^namespace_id: +ns_/m)
    const listed = await berth('ns', 'ls')
    assert.match(listed.stdout, /^NAME +ID +DESCRIPTION +CREATED\npeople +ns_\w+ +for people +20/m)

    const upload = await berth(
      'upload',
      join(dir.path, 'model.onnx'),
      '-n',
      'people',
      '--name',
      'tiny',
      '--version',
      '1.0.0',
      '--format',
      'onnx',
      '--memory-gb',
      '0.5',
      '--replicas',
      '2',
      '--max-batch-size',
      '8',
      '--load-policy',
      'eager',
      '--wait',
    )
    assert.equal(upload.code, 0, upload.stderr)
    assert.equal(upload.stdout, 'uploaded tiny_1_0_0 into people: deployed (ready)\n')
    assert.match(upload.stderr, /deployed \(ready\)\n$/)
    const model = JSON.parse((await berth('ls', 'people', '--json')).stdout).models[0]
    assert.equal(model.model_id, 'tiny_1_0_0')
    const detail = await fetch(`${server.url}/v1/namespaces/people/models/tiny_1_0_0`, {
      headers: { authorization: `Bearer ${env.BERTH_API_KEY}` },
    })
    const serving = ((await detail.json()) as { model: { serving: Record<string, unknown> } }).model
      .serving
    assert.equal(serving.replicas, 2)
    assert.equal(serving.max_batch_size, 8)
    assert.equal(serving.load_policy, 'eager')
    // Only the server's own policies are offered.
    const policy = await berth('deploy', 'people', 'tiny_1_0_0', '--load-policy', 'always')
    assert.equal(policy.code, 2)
    assert.match(policy.stderr, /Allowed choices are eager, on_demand/)

    const table = await berth('ls', 'people')
    assert.match(
      table.stdout,
      /^MODEL +NAME +VERSION +FORMAT +TASK +DEPLOYED +CREATED\ntiny_1_0_0 +tiny +1\.0\.0 +onnx +- +yes +20/,
    )

    const redeploy = await berth('deploy', 'people', 'tiny_1_0_0', '--replicas', '1', '--wait')
    assert.equal(redeploy.code, 0, redeploy.stderr)
    assert.match(redeploy.stdout, /^tiny_1_0_0: deployed \(deployed, ready\)\n$/)

    const gone = await berth('rm', 'people', 'tiny_1_0_0')
    assert.equal(gone.stdout, 'deleted people/tiny_1_0_0\n')
    assert.equal((await berth('ls', 'people')).stdout, 'no models\n')
    const dropped = await berth('namespace', 'rm', 'people')
    assert.equal(dropped.code, 0, dropped.stderr)
    assert.doesNotMatch((await berth('namespace', 'ls')).stdout, /people/)

    // A refusal, for people: one line with its code.
    const refused = await berth('ls', 'nowhere')
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^berth: namespace_not_found: .*\(HTTP 404\)\n$/)
  })

  it("sends this machine's bootstrap key to this machine's server only", async () => {
    const client = join(dir.path, 'client')
    await mkdir(client)
    await writeFile(join(client, 'bootstrap-api-key'), `${env.BERTH_API_KEY}\n`)
    const local = await runBerth(['ns', 'ls', '--json'], {
      BERTH_DATA_DIR: client,
      BERTH_PUBLIC_URL: server.url,
    })
    assert.equal(local.code, 0, local.stderr)
    const elsewhere = await runBerth(['ns', 'ls'], {
      BERTH_DATA_DIR: client,
      BERTH_PUBLIC_URL: server.url,
      BERTH_URL: 'http://127.0.0.1:9',
    })
    assert.equal(elsewhere.code, 2)
    assert.match(elsewhere.stderr, /^berth: cli_usage_invalid: no API key/)
  })

  it('admin commands say which database they use, and create none unless told --init', async () => {
    const made = await berth('org', 'create', 'people-org', '--tier', 'team')
    assert.equal(made.code, 0, made.stderr)
    assert.match(made.stdout, /^name: +people-org$/m)
    assert.equal(
      made.stderr,
      `berth: using the SQLite database ${join(dir.path, 'data', 'berth.db')}\n`,
    )

    const key = await berth('key', 'create', '--org', 'people-org', '--label', 'ci', '--json')
    const { key_id, api_key } = JSON.parse(key.stdout) as { key_id: string; api_key: string }
    const keys = await berth('key', 'ls', '--org', 'people-org')
    assert.match(
      keys.stdout,
      new RegExp(`^KEY +LABEL +CREATED +REVOKED\n${key_id} +ci +20\\S+ +-\n$`),
    )
    assert.ok(!keys.stdout.includes(api_key), 'a key is shown once, at creation')
    await berth('key', 'revoke', key_id)
    const revoked = JSON.parse((await berth('key', 'ls', '--org', 'people-org', '--json')).stdout)
    assert.equal(revoked.keys[0].key_id, key_id)
    assert.equal(typeof revoked.keys[0].revoked_at, 'string')
    const orgs = JSON.parse((await berth('org', 'ls', '--json')).stdout) as {
      organizations: { name: string; tier: string }[]
    }
    assert.deepEqual(
      orgs.organizations.map((o) => [o.name, o.tier]),
      [
        ['default', 'enterprise'],
        ['people-org', 'team'],
      ],
    )
    assert.match((await berth('org', 'ls')).stdout, /^NAME +ID +TIER +CREATED\ndefault +org_/)

    // The wrong environment used to create a fresh database the server never reads, and succeed.
    const elsewhere = join(dir.path, 'elsewhere')
    const refused = await runBerth(['org', 'create', 'zzz'], { BERTH_DATA_DIR: elsewhere })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /^berth: cli_database_missing: there is no database at /)
    await assert.rejects(access(join(elsewhere, 'berth.db')))
    const init = await runBerth(['org', 'create', 'zzz', '--init', '--json'], {
      BERTH_DATA_DIR: elsewhere,
    })
    assert.equal(init.code, 0, init.stderr)
    assert.equal(JSON.parse(init.stdout).name, 'zzz')
    await access(join(elsewhere, 'berth.db'))
  })
})
