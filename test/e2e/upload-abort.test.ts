import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import { after, before, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  archiveUnderWay,
  gzipPrefix,
  stagingAndUnpacking,
  tarBytes,
} from '../fixtures/tar-builder.js'
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
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(uploadHead(undefined))
  // Send part of the archive, wait until the server is staging and unpacking it, then vanish.
  socket.write(await archiveUnderWay())
  for (let i = 0; i < 100 && !stagingAndUnpacking(await keptFiles(t.dataDir)); i++) await sleep(20)
  assert.ok(stagingAndUnpacking(await keptFiles(t.dataDir)), 'the upload was under way')
  socket.destroy()

  for (let i = 0; i < 100 && (await keptFiles(t.dataDir)).length > 0; i++) await sleep(20)
  assert.deepEqual(await keptFiles(t.dataDir), [])
  // The server is still fine.
  const health = await fetch(`http://127.0.0.1:${port}/healthz`)
  assert.equal(health.status, 200)
})

/**
 * The head of an upload to the "aborted" namespace announcing 50 MiB, up to its file part's
 * content: the `name` field first when given.
 */
function uploadHead(name: string | undefined): string {
  const boundary = 'berthunfinished'
  const part = (disposition: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; ${disposition}`
  return (
    'POST /v1/namespaces/aborted/models HTTP/1.1\r\n' +
    'Host: 127.0.0.1\r\n' +
    `Authorization: Bearer ${BOOTSTRAP_KEY}\r\n` +
    `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
    `Content-Length: ${50 * 1024 * 1024}\r\n\r\n` +
    (name === undefined ? '' : `${part(`name="name"\r\n\r\n${name}`)}\r\n`) +
    `${part('name="file"; filename="m.tar.gz"')}\r\nContent-Type: application/gzip\r\n\r\n`
  )
}

/**
 * Opens an upload announcing 50 MiB, sends the `name` field when given, the file part's head
 * and `archive` (the beginning of its content), and never sends the rest. Resolves
 * the answer once one has come, and after the server has closed the connection.
 */
async function unfinishedUpload(name: string | undefined, archive: Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  let answer = ''
  socket.on('data', (chunk: Buffer) => {
    answer += chunk.toString()
  })
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.write(uploadHead(name))
  socket.write(archive)
  for (let i = 0; i < 250 && !answer.includes('\r\n\r\n{'); i++) await sleep(20)
  // The rest of the body is not waited for: the server closes the connection.
  await closed
  return answer
}

it('refuses a bad archive before its body ends, and reads no further', async () => {
  // A symbolic link first, then a model that would take 50 MiB more to arrive.
  const tar = await tarBytes([
    { header: { name: 'link', type: 'symlink', linkname: '/etc/passwd' } },
    { header: { name: 'model.onnx' }, content: randomBytes(4096) },
  ])
  const answer = await unfinishedUpload(undefined, await gzipPrefix(tar.subarray(0, 1024)))
  assert.match(answer, /^HTTP\/1\.1 400 /)
  assert.match(answer, /"code":"archive_has_symlink"/)
  assert.match(answer, /connection: close/i)
  assert.deepEqual(await keptFiles(t.dataDir), [])
})

it('refuses a field out of bounds sent before the archive without reading the archive', async () => {
  // The name "ab" is too short, and a sound archive is on its way.
  const answer = await unfinishedUpload('ab', await archiveUnderWay())
  assert.match(answer, /^HTTP\/1\.1 422 /)
  assert.match(answer, /"loc":\["body","name"\]/)
  assert.deepEqual(await keptFiles(t.dataDir), [])
})
