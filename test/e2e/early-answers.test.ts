import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { it } from 'node:test'
import { startBerthServe } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

const KEY = 'sk_early_answers_key_0123456789abc'

// An answer sent before the request's body has arrived (a 401 from the key check here) closes
// the connection, so a trickling client holds nothing; but most clients (fetch, Python's
// requests) write the whole body before they read. Closed at once, the socket meets the rest of
// the body with a reset that reaches such a client instead of the answer; a lingering close
// reads and drops the rest for a moment, so the client reads the answer.
it('a client that writes its whole body before reading gets the early answer, not a reset', async () => {
  const dir = await tempDir()
  const server = await startBerthServe({ BERTH_DATA_DIR: dir.path, BERTH_BOOTSTRAP_API_KEY: KEY })
  try {
    const body = randomBytes(32 * 1024 ** 2)
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${server.url}/v1/namespaces/ns_x/models`, {
        method: 'POST',
        headers: {
          authorization: 'Bearer sk_not_a_key_0123456789abcdef',
          'content-type': 'multipart/form-data; boundary=x',
        },
        body,
      })
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('connection'), 'close')
      const answer = (await res.json()) as { error: { code: string } }
      assert.equal(answer.error.code, 'api_key_invalid')
    }
  } finally {
    await server.stop()
    await dir.remove()
  }
})
