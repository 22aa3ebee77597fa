import assert from 'node:assert/strict'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { artifactKey } from '../../src/artifacts/artifact-key.js'
import type { ArtifactStore } from '../../src/artifacts/artifact-store.js'
import { isBerthError } from '../../src/errors/berth-error.js'

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

/** A stream of `count` chunks of `size` random bytes that fails after `failAfter` chunks. */
function failingSource(failAfter: number): Readable {
  let sent = 0
  return new Readable({
    read() {
      if (sent === failAfter) this.destroy(new Error('client went away'))
      else {
        sent += 1
        this.push(randomBytes(1024))
      }
    },
  })
}

/** The behaviour every ArtifactStore adapter must have. */
export function artifactStoreContract(
  adapter: string,
  create: () => Promise<ArtifactStore>,
  /** Lists every object (and leftover temp object) the adapter holds, where it can, for leak checks. */
  listAll?: () => Promise<string[]>,
): void {
  describe(`ArtifactStore contract: ${adapter}`, () => {
    let store: ArtifactStore
    before(async () => {
      store = await create()
    })
    after(() => store.close())

    // Each test writes under its own random folder, so tests never share keys.
    const freshKey = () => artifactKey('ns_test', randomUUID(), 'model.tar.gz')

    it('stores a stream and reads it back byte for byte', async () => {
      const key = freshKey()
      const body = randomBytes(3 * 1024 * 1024 + 17)
      const { sizeBytes } = await store.put(
        key,
        Readable.from([body.subarray(0, 1000), body.subarray(1000)]),
      )
      assert.equal(sizeBytes, body.length)
      assert.deepEqual(await store.stat(key), { sizeBytes: body.length })
      const back = await readAll(await store.get(key))
      assert.equal(
        createHash('sha256').update(back).digest('hex'),
        createHash('sha256').update(body).digest('hex'),
      )
    })

    it('refuses to overwrite a key and keeps the first object', async () => {
      const key = freshKey()
      await store.put(key, Readable.from([Buffer.from('first')]))
      await assert.rejects(store.put(key, Readable.from([Buffer.from('second')])), (err) =>
        isBerthError(err, 'artifact_exists'),
      )
      assert.equal((await readAll(await store.get(key))).toString(), 'first')
    })

    it('leaves nothing behind when the source fails', async () => {
      const key = freshKey()
      const before = await listAll?.()
      await assert.rejects(store.put(key, failingSource(5)), /client went away/)
      assert.equal(await store.stat(key), undefined)
      assert.deepEqual(await listAll?.(), before)
    })

    it('stores a local file, leaving the file in place, and never overwrites', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'artifact-src-'))
      try {
        const path = join(dir, 'archive.tar.gz')
        const body = randomBytes(70_000)
        await writeFile(path, body)
        const key = freshKey()
        assert.deepEqual(await store.putFile(key, path), { sizeBytes: body.length })
        assert.deepEqual(await readAll(await store.get(key)), body)
        assert.deepEqual(await readFile(path), body)
        await assert.rejects(store.putFile(key, path), (err) =>
          isBerthError(err, 'artifact_exists'),
        )
        // Removing the source does not touch the stored object.
        await rm(path)
        assert.deepEqual(await readAll(await store.get(key)), body)
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    it('answers artifact_not_found for a missing key', async () => {
      await assert.rejects(store.get(freshKey()), (err) => isBerthError(err, 'artifact_not_found'))
      assert.equal(await store.stat(freshKey()), undefined)
    })

    it('deletes idempotently', async () => {
      const key = freshKey()
      await store.put(key, Readable.from([Buffer.from('x')]))
      await store.delete(key)
      await store.delete(key)
      assert.equal(await store.stat(key), undefined)
      await assert.rejects(store.get(key), (err) => isBerthError(err, 'artifact_not_found'))
    })

    it('lists what it holds, with when each was written, and not what it deleted', async () => {
      const [kept, deleted] = [freshKey(), freshKey()]
      // S3 keeps whole seconds.
      const before = Math.floor(Date.now() / 1000) * 1000
      await store.put(kept, Readable.from([Buffer.from('kept')]))
      await store.put(deleted, Readable.from([Buffer.from('deleted')]))
      await store.delete(deleted)
      const after = Date.now()
      const listed = new Map<string, number>()
      for await (const object of store.list()) listed.set(object.key, object.modifiedMs)
      assert.ok(!listed.has(deleted), 'a deleted object is not listed')
      const modifiedMs = listed.get(kept)
      assert.ok(modifiedMs !== undefined, `${kept} is listed`)
      assert.ok(modifiedMs >= before && modifiedMs <= after, `written at ${modifiedMs}`)
    })

    it('gives every key a URL naming it', () => {
      const key = freshKey()
      assert.ok(store.urlOf(key).endsWith(key))
    })
  })
}
