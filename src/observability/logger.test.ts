import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createLogger } from './logger.js'

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

  it('never writes an API key: the Authorization header, and api_key at the top or one level down', () => {
    const secret = 'sk_live_never_in_a_log_0123456789'
    const lines: string[] = []
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const log = createLogger('info', { destination: sink })
    log.info({ req: { method: 'GET', headers: { authorization: `Bearer ${secret}` } } }, 'a')
    log.info({ headers: { authorization: `Bearer ${secret}` } }, 'b')
    log.info({ api_key: secret }, 'c')
    log.info({ key: { id: 'key_1', api_key: secret }, other: 1 }, 'd')
    log.child({ reqId: 'r' }).info({ created: { api_key: secret } }, 'e')
    assert.equal(lines.length, 5)
    for (const line of lines) {
      assert.ok(!line.includes(secret), line)
      assert.ok(line.includes('[redacted]'), line)
    }
    // What is not a secret is kept as it was, and the caller's object is not changed.
    const d = JSON.parse(lines[3] as string)
    assert.deepEqual(d.key, { id: 'key_1', api_key: '[redacted]' })
    assert.equal(d.other, 1)
    const mine = { key: { api_key: secret } }
    log.info(mine, 'f')
    assert.equal(mine.key.api_key, secret)
  })
})
