import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runBerth } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

/**
 * A start that cannot succeed says why in one line an operator can act on, with a code from
 * docs/errors.md, and exits 1 (issue 13, report 8): never a stack trace.
 */
describe('berth serve, failing to start', () => {
  it('reports an unreachable PostgreSQL as one metadata_unavailable line, without the password', async () => {
    const dir = await tempDir()
    try {
      const run = await runBerth(['serve'], {
        BERTH_DATA_DIR: dir.path,
        BERTH_PORT: '0',
        // Port 1: nothing listens, the connection is refused at once.
        BERTH_DATABASE_URL: 'postgres://berth:hunter2secret@127.0.0.1:1/berth',
      })
      assert.equal(run.code, 1, run.stderr)
      const lines = run.stderr.trimEnd().split('\n')
      assert.equal(lines.length, 1, run.stderr)
      assert.match(lines[0] ?? '', /^berth: metadata_unavailable: .*ECONNREFUSED/)
      assert.ok(!run.stderr.includes('hunter2secret'), 'the password was echoed')
      assert.equal(run.stdout, '')
    } finally {
      await dir.remove()
    }
  })

  it('reports a SQLite file it cannot open as one metadata_unavailable line', async () => {
    const dir = await tempDir()
    try {
      // A directory where the database file should be.
      const run = await runBerth(['serve'], {
        BERTH_DATA_DIR: dir.path,
        BERTH_PORT: '0',
        BERTH_DATABASE_URL: `sqlite://${dir.path}`,
      })
      assert.equal(run.code, 1, run.stderr)
      const lines = run.stderr.trimEnd().split('\n')
      assert.equal(lines.length, 1, run.stderr)
      assert.match(lines[0] ?? '', /^berth: metadata_unavailable: /)
    } finally {
      await dir.remove()
    }
  })
})
