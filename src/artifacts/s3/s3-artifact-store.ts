import { createReadStream } from 'node:fs'
import { Readable, Transform } from 'node:stream'
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import type { ArtifactsConfig } from '../../config/config.js'
import { BerthError } from '../../errors/berth-error.js'
import { artifactExists, artifactNotFound } from '../artifact-errors.js'
import type { ArtifactKey, ArtifactStore, StoredObject } from '../artifact-store.js'

export type S3ArtifactStoreConfig = Extract<ArtifactsConfig, { driver: 's3' }>

function s3Client(config: S3ArtifactStoreConfig): S3Client {
  return new S3Client({
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    // Checksums only where S3 requires them: a presigned PUT must not demand a checksum of a
    // body the server never sees, and older S3 servers (radosgw 16) predate the newer ones.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
    // A copy: the SDK annotates the object, and the configuration is frozen.
    ...(config.credentials === undefined ? {} : { credentials: { ...config.credentials } }),
  })
}

/** Multipart parts: 16 MiB, four in flight. Memory stays about 64 MiB whatever the archive. */
const PART_BYTES = 16 * 1024 * 1024
const PARTS_IN_FLIGHT = 4

/**
 * Archives as objects in one S3 bucket under a prefix (AWS, or any S3 server: radosgw, MinIO).
 * A put streams a multipart upload: the object appears whole when the upload completes, and a
 * failed source aborts it, leaving no parts behind. Credentials come from the standard AWS chain
 * (`AWS_ACCESS_KEY_ID`, …) unless given; they never appear in errors or logs.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly #client: S3Client
  /** Signs presigned downloads for `downloadEndpoint`; `#client` when there is none. */
  readonly #downloadSigner: S3Client
  readonly #bucket: string
  readonly #prefix: string

  private constructor(client: S3Client, config: S3ArtifactStoreConfig) {
    this.#client = client
    // Signing is done here, offline: this client never connects.
    this.#downloadSigner =
      config.downloadEndpoint === undefined
        ? client
        : s3Client({ ...config, endpoint: config.downloadEndpoint })
    this.#bucket = config.bucket
    this.#prefix = config.prefix
  }

  /**
   * Connects, creating the bucket when it is missing. Throws `artifacts_unavailable` (at start)
   * when it cannot, naming the bucket and the reason, never the credentials.
   */
  static async open(config: S3ArtifactStoreConfig): Promise<S3ArtifactStore> {
    const client = s3Client(config)
    const store = new S3ArtifactStore(client, config)
    try {
      await store.#ensureBucket()
    } catch (err) {
      await store.close()
      throw new BerthError(
        'artifacts_unavailable',
        `the S3 bucket "${config.bucket}" cannot be used: ${describe(err)}`,
        { details: { bucket: config.bucket }, cause: err },
      )
    }
    return store
  }

  async put(key: ArtifactKey, source: Readable): Promise<{ sizeBytes: number }> {
    if ((await this.stat(key)) !== undefined) {
      source.destroy()
      throw artifactExists(key)
    }
    let sizeBytes = 0
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sizeBytes += chunk.length
        done(null, chunk)
      },
    })
    // The source's failure must fail the upload: pipe() alone would leave it waiting.
    source.once('error', (err) => counted.destroy(err))
    source.pipe(counted)
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key: this.#objectKey(key), Body: counted },
      partSize: PART_BYTES,
      queueSize: PARTS_IN_FLIGHT,
      // A failed upload is aborted: no parts left in the bucket.
      leavePartsOnError: false,
    })
    try {
      await upload.done()
    } catch (err) {
      source.destroy()
      // The source's own error is the caller's; the rest is the store's.
      if (source.errored !== null && source.errored !== undefined) throw source.errored
      throw err
    }
    return { sizeBytes }
  }

  putFile(key: ArtifactKey, path: string): Promise<{ sizeBytes: number }> {
    return this.put(key, createReadStream(path, { highWaterMark: 1024 * 1024 }))
  }

  async get(key: ArtifactKey): Promise<Readable> {
    try {
      const answer = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#objectKey(key) }),
      )
      if (!(answer.Body instanceof Readable)) throw new Error('the S3 answer has no body stream')
      return answer.Body
    } catch (err) {
      if (isMissing(err)) throw artifactNotFound(key, err)
      throw err
    }
  }

  async stat(key: ArtifactKey): Promise<{ sizeBytes: number } | undefined> {
    try {
      const head = await this.#client.send(
        new HeadObjectCommand({ Bucket: this.#bucket, Key: this.#objectKey(key) }),
      )
      return { sizeBytes: head.ContentLength ?? 0 }
    } catch (err) {
      if (isMissing(err)) return undefined
      throw err
    }
  }

  /** Every object under the prefix, a page (1,000 keys) at a time. */
  async *list(): AsyncIterable<StoredObject> {
    const prefix = this.#prefix === '' ? '' : `${this.#prefix}/`
    let token: string | undefined
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.#bucket,
          Prefix: prefix,
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }),
      )
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue
        const key = object.Key.slice(prefix.length) as ArtifactKey
        yield { key, modifiedMs: object.LastModified?.getTime() ?? 0 }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
  }

  async delete(key: ArtifactKey): Promise<void> {
    await this.#client.send(
      new DeleteObjectCommand({ Bucket: this.#bucket, Key: this.#objectKey(key) }),
    )
  }

  presignPut(key: ArtifactKey, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(
      this.#client,
      new PutObjectCommand({ Bucket: this.#bucket, Key: this.#objectKey(key) }),
      { expiresIn: expiresInSeconds },
    )
  }

  presignGet(key: ArtifactKey, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(
      this.#downloadSigner,
      // The bytes as stored: an object put with `Content-Encoding: gzip` would otherwise be
      // decoded on the way by HTTP clients (fetch), and no longer match its recorded SHA-256.
      new GetObjectCommand({
        Bucket: this.#bucket,
        Key: this.#objectKey(key),
        ResponseContentEncoding: 'identity',
      }),
      { expiresIn: expiresInSeconds },
    )
  }

  urlOf(key: ArtifactKey): string {
    return `s3://${this.#bucket}/${this.#objectKey(key)}`
  }

  async close(): Promise<void> {
    this.#client.destroy()
    if (this.#downloadSigner !== this.#client) this.#downloadSigner.destroy()
  }

  #objectKey(key: ArtifactKey): string {
    return this.#prefix === '' ? key : `${this.#prefix}/${key}`
  }

  async #ensureBucket(): Promise<void> {
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.#bucket }))
      return
    } catch (err) {
      if (!isMissing(err)) throw err
    }
    try {
      await this.#client.send(new CreateBucketCommand({ Bucket: this.#bucket }))
    } catch (err) {
      // Another instance created it first.
      const name = err instanceof S3ServiceException ? err.name : ''
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err
    }
  }
}

function isMissing(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false
  return (
    err.name === 'NoSuchKey' ||
    err.name === 'NotFound' ||
    err.name === 'NoSuchBucket' ||
    err.$metadata.httpStatusCode === 404
  )
}

/** What went wrong, without request details (which could carry signed headers). */
function describe(err: unknown): string {
  if (err instanceof S3ServiceException) return `${err.name} (HTTP ${err.$metadata.httpStatusCode})`
  if (err instanceof Error) return err.message
  return String(err)
}
