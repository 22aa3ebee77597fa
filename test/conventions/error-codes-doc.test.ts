import assert from 'node:assert/strict'
import { it } from 'node:test'
import { ERROR_CODES } from '../../src/errors/error-codes.js'
import { HTTP_BY_KIND } from '../../src/http/error-handler.js'
import { markdownTable, readRepoFile } from '../helpers/repo.js'

it('docs/errors.md lists exactly the catalog, each with its status and type', async () => {
  const rows = markdownTable(await readRepoFile('docs/errors.md'), 'Code')
  const documented = new Map(rows.map(([code, http]) => [code?.replaceAll('`', ''), http]))
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ERROR_CODES).sort())
  for (const [code, kind] of Object.entries(ERROR_CODES)) {
    const { status, type } = HTTP_BY_KIND[kind]
    assert.equal(documented.get(code), `${status} ${type}`, code)
  }
  for (const row of rows)
    assert.ok(
      row.every((cell) => cell.length > 0),
      row.join(' | '),
    )
})
