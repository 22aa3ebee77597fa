import assert from 'node:assert/strict'
import { dirname, join, normalize } from 'node:path'
import { it } from 'node:test'
import { BERTH_VERSION } from '../../src/version.js'
import { readRepoFile, sourceFiles } from '../helpers/repo.js'

/** Repo-relative targets of the relative imports of one source file. */
async function importsOf(file: string): Promise<string[]> {
  const source = await readRepoFile(file)
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map(
    (m) => m[1] ?? '',
  )
  return specifiers.map((s) => (s.startsWith('.') ? normalize(join(dirname(file), s)) : s))
}

it('reads process.env only in src/main.ts', async () => {
  for (const file of await sourceFiles()) {
    if (file === 'src/main.ts') continue
    assert.ok(!(await readRepoFile(file)).includes('process.env'), file)
  }
})

it('keeps domain/ pure: it imports only errors/ and node built-ins', async () => {
  for (const file of (await sourceFiles()).filter((f) => f.startsWith('src/domain/'))) {
    for (const target of await importsOf(file)) {
      assert.ok(
        target.startsWith('node:') ||
          target.startsWith('src/domain/') ||
          target.startsWith('src/errors/'),
        `${file} imports ${target}`,
      )
    }
  }
})

it('lets only factories and the composition root pick adapters', async () => {
  const adapter = /^src\/metadata\/(sqlite|memory|kysely|postgres)\//
  for (const file of await sourceFiles()) {
    if (adapter.test(file) || /\/create-[a-z-]+\.ts$/.test(file)) continue
    for (const target of await importsOf(file)) {
      assert.ok(!adapter.test(target), `${file} imports adapter ${target}`)
    }
  }
})

it('keeps drivers out of everything but their adapters', async () => {
  const homes: ReadonlyArray<readonly [string, RegExp]> = [
    ['better-sqlite3', /^src\/metadata\/sqlite\//],
    ['kysely', /^src\/metadata\/(sqlite|kysely|postgres|migrations)\//],
    ['pg', /^src\/metadata\/postgres\//],
    ['node:child_process', /^src\/scheduler\/local\//],
    ['onnxruntime-node', /^src\/runtime\/onnx\//],
  ]
  for (const file of await sourceFiles()) {
    for (const target of await importsOf(file)) {
      for (const [driver, home] of homes) {
        if (target === driver) assert.ok(home.test(file), `${file} imports ${target}`)
      }
    }
  }
})

it('keeps http/ free of stores and file access', async () => {
  for (const file of (await sourceFiles()).filter((f) => f.startsWith('src/http/'))) {
    for (const target of await importsOf(file)) {
      assert.ok(!target.startsWith('src/metadata/'), `${file} imports ${target}`)
      assert.ok(!['node:fs', 'node:fs/promises'].includes(target), `${file} imports ${target}`)
    }
  }
})

it('has no barrel index files', async () => {
  assert.deepEqual(
    (await sourceFiles()).filter((f) => f.endsWith('/index.ts')),
    [],
  )
})

it('keeps src/version.ts equal to package.json', async () => {
  const pkg = JSON.parse(await readRepoFile('package.json'))
  assert.equal(BERTH_VERSION, pkg.version)
})
