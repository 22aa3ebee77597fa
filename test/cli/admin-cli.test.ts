import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runBerth, type ServeProcess, startBerthServe } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

function oneJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line, got:\n${stdout}`)
  return JSON.parse(lines[0] ?? '')
}

describe('berth admin CLI, against a running server', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let env: Record<string, string>
  let server: ServeProcess

  before(async () => {
    dir = await tempDir()
    env = { BERTH_DATA_DIR: dir.path }
    server = await startBerthServe(env)
  })
  after(async () => {
    await server.stop()
    await dir.remove()
  })

  // JSON: what scripts read (people get `key: value` lines, tested below).
  const berth = (...args: string[]) => runBerth([...args, '--json'], env)
  const listNamespaces = (key: string) =>
    fetch(`${server.url}/v1/namespaces`, { headers: { authorization: `Bearer ${key}` } })

  it('creates an organization, a key that works at once, and revokes it', async () => {
    const created = await berth('org', 'create', 'acme', '--tier', 'team')
    assert.equal(created.code, 0, created.stderr)
    const org = oneJsonLine(created.stdout)
    assert.deepEqual(Object.keys(org).sort(), ['name', 'organization_id', 'tier'])
    assert.match(String(org.organization_id), /^org_[0-9a-f]{20}$/)
    assert.equal(org.name, 'acme')
    assert.equal(org.tier, 'team')

    const keyRun = await berth('key', 'create', '--org', 'acme', '--label', 'ci')
    assert.equal(keyRun.code, 0, keyRun.stderr)
    const key = oneJsonLine(keyRun.stdout)
    assert.deepEqual(Object.keys(key).sort(), ['api_key', 'key_id', 'organization_id'])
    assert.match(String(key.api_key), /^sk_[A-Za-z0-9_-]{43}$/)
    assert.equal(key.organization_id, org.organization_id)
    assert.equal((await listNamespaces(String(key.api_key))).status, 200)

    const revoked = await berth('key', 'revoke', String(key.key_id))
    assert.equal(revoked.code, 0, revoked.stderr)
    const answer = oneJsonLine(revoked.stdout)
    assert.equal(answer.key_id, key.key_id)
    assert.equal(typeof answer.revoked_at, 'string')
    const refused = await listNamespaces(String(key.api_key))
    assert.equal(refused.status, 401)
    assert.equal(
      ((await refused.json()) as { error: { code: string } }).error.code,
      'api_key_invalid',
    )
  })

  it('sets the tier by organization id or name', async () => {
    const org = oneJsonLine((await berth('org', 'create', 'tiered')).stdout)
    assert.equal(org.tier, 'free')
    const byId = oneJsonLine(
      (await berth('org', 'set-tier', String(org.organization_id), 'pro')).stdout,
    )
    assert.deepEqual(byId, { ...org, tier: 'pro' })
    const byName = oneJsonLine((await berth('org', 'set-tier', 'tiered', 'enterprise')).stdout)
    assert.deepEqual(byName, { ...org, tier: 'enterprise' })
  })

  it('fails with a JSON error and exit 1 on domain errors', async () => {
    for (const [args, code] of [
      [['org', 'create', 'acme'], 'organization_name_taken'],
      [['org', 'set-tier', 'nobody', 'pro'], 'organization_not_found'],
      [['org', 'set-tier', 'acme', 'platinum'], 'tier_invalid'],
      [['key', 'create', '--org', 'nobody'], 'organization_not_found'],
      [['key', 'revoke', 'key_00000000000000000000'], 'api_key_not_found'],
      [['org', 'create', 'bad name!'], 'request_validation_failed'],
    ] as const) {
      const run = await berth(...args)
      assert.equal(run.code, 1, args.join(' '))
      assert.equal(run.stdout, '')
      assert.equal(JSON.parse(run.stderr).error.code, code, args.join(' '))
    }
  })

  it('fails with exit 2 on usage errors', async () => {
    for (const args of [
      ['org'],
      ['org', 'rename', 'x'],
      ['key', 'create'],
      ['key', 'create', '--org', 'acme', '--unknown'],
      ['org', 'create'],
      ['key', 'revoke'],
    ]) {
      const run = await berth(...args)
      assert.equal(run.code, 2, args.join(' '))
      assert.equal(JSON.parse(run.stderr).error.code, 'cli_usage_invalid', args.join(' '))
    }
    const bare = await runBerth([], env)
    assert.equal(bare.code, 2)
    assert.match(bare.stdout, /^Usage: berth /)
  })
})

describe('berth serve', () => {
  it('prints a generated bootstrap key once, serves, and stops cleanly on SIGTERM', async () => {
    const dir = await tempDir()
    try {
      const server = await startBerthServe({ BERTH_DATA_DIR: dir.path })
      const printed = /API key (sk_\S+)/.exec(server.output())?.[1]
      assert.ok(printed !== undefined, server.output())
      const res = await fetch(`${server.url}/v1/namespaces`, {
        headers: { authorization: `Bearer ${printed}` },
      })
      assert.equal(res.status, 200)
      assert.equal(await server.stop('SIGTERM'), 0)
      assert.match(server.output(), /"msg":"stopped"/)
      assert.equal(server.output().split(printed).length - 1, 1, 'the key is printed exactly once')

      const again = await startBerthServe({ BERTH_DATA_DIR: dir.path })
      assert.doesNotMatch(again.output(), /sk_/)
      assert.equal(await again.stop('SIGINT'), 0)
    } finally {
      await dir.remove()
    }
  })

  it('refuses to start on bad configuration, listing every problem', async () => {
    const run = await runBerth(['serve'], {
      BERTH_PORT: 'eighty',
      BERTH_LOG_LEVEL: 'loud',
      BERTH_DATABASE_URL: 'mysql://x',
      BERTH_BOOTSTRAP_API_KEY: 'hunter2',
    })
    assert.equal(run.code, 1)
    // One line per problem, each with its code: no JSON, no stack.
    const lines = run.stderr.trimEnd().split('\n')
    assert.equal(lines.length, 4, run.stderr)
    const prefix = 'berth: config_invalid: '
    assert.ok(
      lines.every((line) => line.startsWith(prefix)),
      run.stderr,
    )
    const problems = lines.map((line) => line.slice(prefix.length))
    for (const name of [
      'BERTH_PORT',
      'BERTH_LOG_LEVEL',
      'BERTH_DATABASE_URL',
      'BERTH_BOOTSTRAP_API_KEY',
    ]) {
      assert.ok(
        problems.some((p) => p.startsWith(name)),
        name,
      )
    }
    assert.ok(!run.stderr.includes('hunter2'), 'a secret was echoed')
  })
})
