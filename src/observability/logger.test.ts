import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const LOGGER = fileURLToPath(new URL('./logger.js', import.meta.url))

describe('the process logger', () => {
  it('has written every line to stdout by the time the call returns: a kill loses none', () => {
    // A process killed outright (the OOM killer, SIGKILL) runs no exit handler: a line still
    // waiting in a buffer or a thread is lost with it, and lines written ahead of a crash are
    // the ones that explain it.
    const lines = 2000
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { createLogger } = await import(${JSON.stringify(LOGGER)})
         const log = createLogger('info')
         for (let i = 0; i < ${lines}; i++) log.info({ i }, 'line')
         process.kill(process.pid, 'SIGKILL')`,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )
    assert.equal(child.signal, 'SIGKILL', child.stderr)
    const written = child.stdout.split('\n').filter((line) => line.length > 0)
    assert.equal(written.length, lines)
    assert.equal(JSON.parse(written.at(-1) as string).i, lines - 1)
  })
})
