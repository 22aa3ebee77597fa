import type { Readable } from 'node:stream'

/** A key built only by `artifactKey()`, so it is always a safe relative path. */
export type ArtifactKey = string & { readonly __brand: 'ArtifactKey' }

/** An object as listed: its key and when it was last written. */
export interface StoredObject {
  readonly key: ArtifactKey
  readonly modifiedMs: number
}

/**
 * Where uploaded archives are kept, unchanged and never overwritten. Objects are
 * written once and read as streams; memory stays flat whatever their size.
 * Not in the port: directories, renames, SDK clients.
 */
export interface ArtifactStore {
  /**
   * Stores all of `source` under `key`, atomically: a reader sees the whole object or none.
   * Consumes `source`. Throws `artifact_exists` when the key is taken (nothing is replaced); when
   * `source` fails, rethrows its error and leaves nothing behind. Resolves the bytes stored.
   */
  put(key: ArtifactKey, source: Readable): Promise<{ sizeBytes: number }>

  /**
   * Stores the local file at `path` under `key`, with `put`'s guarantees; the file stays where it
   * is, owned by the caller. Adapters that can take it without copying do (fs: a hard link).
   */
  putFile(key: ArtifactKey, path: string): Promise<{ sizeBytes: number }>

  /** A stream of the object; the caller consumes or destroys it. Throws `artifact_not_found`. */
  get(key: ArtifactKey): Promise<Readable>

  /** The object's size, or `undefined` when there is none. */
  stat(key: ArtifactKey): Promise<{ sizeBytes: number } | undefined>

  /**
   * Every object in the store, and what an interrupted write left where the store can have
   * leftovers (a file store's temp files), in no particular order; for finding objects no record
   * owns. Pages through large stores without holding them in memory.
   */
  list(): AsyncIterable<StoredObject>

  /** Removes the object. Idempotent: deleting a missing key succeeds. */
  delete(key: ArtifactKey): Promise<void>

  /**
   * A URL a client can `PUT` the object to directly until `expiresInSeconds` pass, where the
   * store can sign one (S3); `undefined` where it cannot (the file store), and berth takes the
   * upload itself. Nothing checks what arrives there: read it back before trusting it.
   */
  presignPut(key: ArtifactKey, expiresInSeconds: number): Promise<string | undefined>

  /**
   * A URL anyone holding it can `GET` the object from until `expiresInSeconds` pass, where the
   * store can sign one (S3: for its download endpoint, the server as runners reach it);
   * `undefined` where it cannot (the file store). Check what is read against the recorded
   * SHA-256: the URL proves nothing about the object.
   */
  presignGet(key: ArtifactKey, expiresInSeconds: number): Promise<string | undefined>

  /**
   * The address shown to clients: `s3://bucket/key`, or `berth://archives/key` for the file
   * store (never a path on the server).
   */
  urlOf(key: ArtifactKey): string

  /** Releases clients and handles. Idempotent. */
  close(): Promise<void>
}
