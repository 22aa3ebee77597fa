import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, keptFiles } from '../helpers/uploads.js'

let t: TestApp
let port: number
before(async () => {
  t = await startTestApp()
  await createNamespace(t, 'aborted')
  await t.app.server.listen({ host: '127.0.0.1', port: 0 })
  const address = t.app.server.server.address()
  port = typeof address === 'object' && address !== null ? address.port : 0
})
after(() => t.close())

it('keeps nothing when the client goes away in the middle of the archive', async () => {
  const boundary = 'berthabort'
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.tar.gz"\r\n` +
    'Content-Type: application/gzip\r\n\r\n'
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(
    'POST /v1/namespaces/aborted/models HTTP/1.1\r\n' +
      'Host: 127.0.0.1\r\n' +
      `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
      `Content-Length: ${50 * 1024 * 1024}\r\n\r\n` +
      head,
  )
  // Send part of the archive, wait until the server is staging it, then vanish.
  socket.write(Buffer.alloc(2 * 1024 * 1024, 7))
  for (let i = 0; i < 50 && (await keptFiles(t.dataDir)).length === 0; i++) await sleep(20)
  assert.equal((await keptFiles(t.dataDir)).length, 1, 'the upload was being staged')
  socket.destroy()

  for (let i = 0; i < 100 && (await keptFiles(t.dataDir)).length > 0; i++) await sleep(20)
  assert.deepEqual(await keptFiles(t.dataDir), [])
  // The server is still fine.
  const health = await fetch(`http://127.0.0.1:${port}/healthz`)
  assert.equal(health.status, 200)
})
