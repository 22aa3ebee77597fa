import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { gzipSync } from 'node:zlib'
import {
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3'
import { artifactKey } from '../../src/artifacts/artifact-key.js'
import { S3ArtifactStore } from '../../src/artifacts/s3/s3-artifact-store.js'
import { forwardTcp } from '../helpers/forwarder.js'
import { s3ForTests, testBucket } from '../helpers/services.js'
import { artifactStoreContract } from './artifact-store.contract.js'

const s3 = s3ForTests()
if ('skip' in s3) {
  describe('ArtifactStore contract: s3', () => {
    it('needs an S3 server', { skip: s3.skip }, () => undefined)
  })
} else {
  const bucket = testBucket()
  const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey }
  const client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials,
  })
  const open = () =>
    S3ArtifactStore.open({
      driver: 's3',
      bucket,
      prefix: 'berth/archives',
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials,
    })
  /** Every object and every unfinished multipart upload: a failed put must leave neither. */
  const listAll = async () => {
    const objects = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
    return [
      ...(objects.Contents ?? []).map((o) => o.Key ?? ''),
      ...(uploads.Uploads ?? []).map((u) => `(upload) ${u.Key ?? ''}`),
    ].sort()
  }
  after(async () => {
    for (const key of await listAll()) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    }
    await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined)
    client.destroy()
  })

  // The bucket does not exist yet: the first open creates it.
  artifactStoreContract('s3 (radosgw)', open, listAll)

  describe('s3 specifics', () => {
    it('streams a multipart upload (three parts) and reads it back', async () => {
      const store = await open()
      try {
        const key = artifactKey('ns_test', 'multipart', 'big.tar.gz')
        const part = randomBytes(1024 * 1024)
        const parts = Array.from({ length: 40 }, () => part)
        const { sizeBytes } = await store.put(key, Readable.from(parts))
        assert.equal(sizeBytes, 40 * part.length)
        const hash = createHash('sha256')
        for await (const chunk of await store.get(key)) hash.update(chunk as Buffer)
        const want = createHash('sha256')
        for (const p of parts) want.update(p)
        assert.equal(hash.digest('hex'), want.digest('hex'))
        assert.equal(store.urlOf(key), `s3://${bucket}/berth/archives/ns_test/multipart/big.tar.gz`)
        await store.delete(key)
      } finally {
        await store.close()
      }
    })

    it('aborts a multipart upload whose source fails part-way: no parts are left', async () => {
      const store = await open()
      try {
        const before = await listAll()
        let sent = 0
        const source = new Readable({
          read() {
            sent += 1
            if (sent > 20) this.destroy(new Error('client went away'))
            else this.push(randomBytes(1024 * 1024))
          },
        })
        const key = artifactKey('ns_test', 'multipart', 'broken.tar.gz')
        await assert.rejects(store.put(key, source), /client went away/)
        assert.deepEqual(await listAll(), before)
      } finally {
        await store.close()
      }
    })

    it('presigns a PUT that S3 takes until it expires, and refuses after', async () => {
      const store = await open()
      try {
        const key = artifactKey('ns_test', 'presigned', 'model.tar.gz')
        const url = await store.presignPut(key, 60)
        const put = await fetch(url, { method: 'PUT', body: Buffer.from('archive bytes') })
        assert.equal(put.status, 200, await put.text())
        assert.deepEqual(await store.stat(key), { sizeBytes: 13 })
        await store.delete(key)
        const soon = await store.presignPut(artifactKey('ns_test', 'presigned', 'late.tar.gz'), 1)
        await new Promise((r) => setTimeout(r, 2100))
        const late = await fetch(soon, { method: 'PUT', body: Buffer.from('too late') })
        assert.equal(late.status, 403)
        assert.equal(
          await store.stat(artifactKey('ns_test', 'presigned', 'late.tar.gz')),
          undefined,
        )
      } finally {
        await store.close()
      }
    })

    it('presigns a GET for the download endpoint, good until it expires', async () => {
      // The same server under another address: the URL must be signed for the one it carries.
      const server = new URL(s3.endpoint)
      const forwarder = await forwardTcp('127.0.0.1', {
        host: server.hostname,
        port: Number(server.port),
      })
      const downloadEndpoint = `http://127.0.0.1:${forwarder.port}`
      const store = await S3ArtifactStore.open({
        driver: 's3',
        bucket,
        prefix: 'berth/archives',
        endpoint: s3.endpoint,
        downloadEndpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials,
      })
      try {
        const key = artifactKey('ns_test', 'presigned', 'get.tar.gz')
        await store.put(key, Readable.from([Buffer.from('archive bytes')]))
        const url = await store.presignGet(key, 60)
        assert.equal(new URL(url).port, String(forwarder.port))
        const got = await fetch(url)
        assert.equal(got.status, 200)
        assert.equal(await got.text(), 'archive bytes')
        // An object stored as gzip-encoded (a client's PUT may say so) comes back as stored:
        // fetch would otherwise decode it, and the bytes would not be the archive's.
        const gz = artifactKey('ns_test', 'presigned', 'encoded.tar.gz')
        const stored = gzipSync(Buffer.from('the archive itself'))
        const put = await fetch(await store.presignPut(gz, 60), {
          method: 'PUT',
          headers: { 'content-encoding': 'gzip' },
          body: stored,
        })
        assert.equal(put.status, 200, await put.text())
        const encoded = await fetch(await store.presignGet(gz, 60))
        assert.equal(encoded.status, 200)
        assert.ok(Buffer.from(await encoded.arrayBuffer()).equals(stored), 'not decoded on the way')
        await store.delete(gz)
        // Signed for one address, asked at another: refused.
        const elsewhere = new URL(url)
        elsewhere.port = server.port
        const refused = await fetch(elsewhere)
        assert.equal(refused.status, 403)
        await refused.arrayBuffer()
        const soon = await store.presignGet(key, 1)
        await new Promise((r) => setTimeout(r, 2100))
        const late = await fetch(soon)
        assert.equal(late.status, 403)
        await late.arrayBuffer()
        await store.delete(key)
      } finally {
        await store.close()
        await forwarder.close()
      }
    })

    it('says which bucket cannot be used, without the credentials', async () => {
      await assert.rejects(
        S3ArtifactStore.open({
          driver: 's3',
          bucket: 'berth-test-denied',
          prefix: '',
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
          credentials: { accessKeyId: 'nobody', secretAccessKey: 'sekrit-value-123' },
        }),
        (err: Error) => {
          assert.match(err.message, /berth-test-denied/)
          assert.doesNotMatch(`${err.message} ${String(err.cause)}`, /sekrit-value-123/)
          return true
        },
      )
    })
  })
}
