import assert from 'node:assert/strict'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { BOOTSTRAP_KEY_FILE, createApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { runAdminCommand } from '../helpers/admin.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp } from '../helpers/test-app.js'
import { createNamespace } from '../helpers/uploads.js'

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name))
}

describe('bootstrap', () => {
  it('uses BERTH_BOOTSTRAP_API_KEY for the default enterprise organization, writing no file', async () => {
    const t = await startTestApp()
    try {
      assert.equal(t.app.bootstrap.created, true)
      assert.equal(t.app.bootstrap.created && t.app.bootstrap.generatedKey, undefined)
      const res = await t.request({ method: 'GET', url: '/v1/namespaces', key: BOOTSTRAP_KEY })
      assert.equal(res.statusCode, 200)
      await assert.rejects(stat(join(t.dataDir, BOOTSTRAP_KEY_FILE)), { code: 'ENOENT' })
      const org = await runAdminCommand(['org', 'set-tier', 'default', 'enterprise'], t.config)
      assert.equal(org.name, 'default')
      assert.equal(org.tier, 'enterprise')
    } finally {
      await t.close()
    }
  })

  it('generates a key once, writes it with mode 0600, and never again', async () => {
    const t = await startTestApp({ BERTH_BOOTSTRAP_API_KEY: undefined })
    try {
      const boot = t.app.bootstrap
      assert.ok(boot.created)
      const key = boot.generatedKey ?? assert.fail('no key generated')
      assert.match(key, /^sk_[A-Za-z0-9_-]{43}$/)
      const file = join(t.dataDir, BOOTSTRAP_KEY_FILE)
      assert.equal(boot.generatedKeyFile, file)
      assert.equal((await stat(file)).mode & 0o777, 0o600)
      assert.equal(await readFile(file, 'utf8'), `${key}\n`)
      assert.equal((await t.request({ method: 'GET', url: '/v1/namespaces', key })).statusCode, 200)

      // A second start on the same database finds an organization and creates nothing. (Its
      // own data directory: one server per directory, and this one still runs.)
      const second = await tempDir()
      const again = await createApp(
        { ...t.config, dataDir: second.path },
        { logger: createLogger('silent') },
      )
      try {
        assert.deepEqual(again.bootstrap, { created: false })
        assert.equal(await readFile(file, 'utf8'), `${key}\n`)
      } finally {
        await again.close()
        await second.remove()
      }
    } finally {
      await t.close()
    }
  })

  it('keeps every API key out of the data dir (but the bootstrap file) and out of the logs', async () => {
    const t = await startTestApp({ BERTH_BOOTSTRAP_API_KEY: undefined })
    try {
      const boot = t.app.bootstrap
      const keys = [boot.created ? (boot.generatedKey ?? '') : '']
      await runAdminCommand(['org', 'create', 'acme', '--tier', 'pro'], t.config)
      for (let i = 0; i < 3; i++) {
        const created = await runAdminCommand(['key', 'create', '--org', 'acme'], t.config)
        keys.push(String(created.api_key))
      }
      for (const key of keys) {
        await t.request({ method: 'GET', url: '/v1/namespaces', key })
        await t.request({
          method: 'POST',
          url: '/v1/namespaces',
          key,
          body: { namespace_name: 'n1' },
        })
      }
      await t.request({ method: 'GET', url: '/v1/namespaces', key: `${keys[1]}x` })
      await t.app.close()

      const files = (await filesUnder(t.dataDir)).filter((f) => !f.endsWith(BOOTSTRAP_KEY_FILE))
      assert.ok(files.some((f) => f.endsWith('berth.db')))
      for (const file of files) {
        const content = await readFile(file)
        for (const key of keys) {
          assert.equal(content.includes(key), false, `${file} holds a key in clear`)
          // Neither the random part alone.
          assert.equal(content.includes(key.slice(3)), false, `${file} holds a key in clear`)
        }
      }
      const logs = t.logs()
      assert.ok(logs.length > 0)
      for (const key of keys)
        assert.equal(logs.includes(key.slice(3)), false, 'a key reached the logs')
    } finally {
      await t.close()
    }
  })

  it('keeps what it creates private: the data directory 0700, the database files 0600', async () => {
    const parent = await tempDir()
    const dataDir = join(parent.path, 'fresh')
    const t = await startTestApp({ BERTH_DATA_DIR: dataDir })
    try {
      await createNamespace(t, 'private')
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700)
      const files = (await readdir(dataDir)).filter((f) => f.startsWith('berth.'))
      assert.ok(files.includes('berth.db') && files.includes('berth.db-wal'), files.join())
      for (const file of files) {
        assert.equal((await stat(join(dataDir, file))).mode & 0o777, 0o600, file)
      }
    } finally {
      await t.close()
      await parent.remove()
    }
  })

  it('bootstraps once when several instances start on one empty store', async () => {
    const dir = await tempDir()
    try {
      // One database; each instance its own data directory (one server per directory).
      const database = `sqlite://${join(dir.path, 'berth.db')}`
      const configs = ['a', 'b', 'c'].map((name) =>
        loadConfig({
          BERTH_DATA_DIR: join(dir.path, name),
          BERTH_DATABASE_URL: database,
          BERTH_BOOTSTRAP_API_KEY: undefined,
        }),
      )
      const apps = await Promise.all(
        configs.map((config) => createApp(config, { logger: createLogger('silent') })),
      )
      assert.equal(apps.filter((a) => a.bootstrap.created).length, 1)
      await Promise.all(apps.map((a) => a.close()))
    } finally {
      await dir.remove()
    }
  })
})
