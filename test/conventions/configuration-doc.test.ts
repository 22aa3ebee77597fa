import assert from 'node:assert/strict'
import { it } from 'node:test'
import { markdownTable, readRepoFile } from '../helpers/repo.js'

it('docs/configuration.md lists exactly the variables the loader reads', async () => {
  const source = await readRepoFile('src/config/load-config.ts')
  const read = new Set([...source.matchAll(/'(BERTH_[A-Z0-9_]+)'/g)].map((m) => m[1]))
  // Every table of the page: server variables, then client ones.
  const doc = await readRepoFile('docs/configuration.md')
  const firstCells = doc
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split('|')[1] ?? '')
  const documented = new Set(
    firstCells.flatMap((cell) => [...cell.matchAll(/`(BERTH_[A-Z0-9_]+)`/g)].map((m) => m[1])),
  )
  assert.ok(markdownTable(doc, 'Variable').length > 0)
  assert.ok(read.size >= 12)
  assert.deepEqual([...documented].sort(), [...read].sort())
})

it('the variables of the original contract are all read', async () => {
  const source = await readRepoFile('src/config/load-config.ts')
  for (const name of [
    'BERTH_HOST',
    'BERTH_PORT',
    'BERTH_PUBLIC_URL',
    'BERTH_DATA_DIR',
    'BERTH_DATABASE_URL',
    'BERTH_STORAGE_URL',
    'BERTH_SCHEDULER',
    'BERTH_BOOTSTRAP_API_KEY',
    'BERTH_MAX_ARCHIVE_BYTES',
    'BERTH_TORCH_PYTHON',
  ]) {
    assert.ok(source.includes(`'${name}'`), name)
  }
})
