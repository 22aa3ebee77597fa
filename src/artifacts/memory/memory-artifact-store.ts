import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { artifactExists, artifactNotFound } from '../artifact-errors.js'
import type { ArtifactKey, ArtifactStore, StoredObject } from '../artifact-store.js'

/** Archives in memory: the fast test double. Passes the same contract suite as the real stores. */
export class MemoryArtifactStore implements ArtifactStore {
  readonly #objects = new Map<string, { body: Buffer; modifiedMs: number }>()

  async put(key: ArtifactKey, source: Readable): Promise<{ sizeBytes: number }> {
    const chunks: Buffer[] = []
    for await (const chunk of source) chunks.push(Buffer.from(chunk as Uint8Array))
    if (this.#objects.has(key)) {
      throw artifactExists(key)
    }
    const body = Buffer.concat(chunks)
    this.#objects.set(key, { body, modifiedMs: Date.now() })
    return { sizeBytes: body.length }
  }

  putFile(key: ArtifactKey, path: string): Promise<{ sizeBytes: number }> {
    return this.put(key, createReadStream(path))
  }

  async get(key: ArtifactKey): Promise<Readable> {
    const object = this.#objects.get(key)
    if (object === undefined) {
      throw artifactNotFound(key)
    }
    return Readable.from([object.body])
  }

  async stat(key: ArtifactKey): Promise<{ sizeBytes: number } | undefined> {
    const object = this.#objects.get(key)
    return object === undefined ? undefined : { sizeBytes: object.body.length }
  }

  async *list(): AsyncIterable<StoredObject> {
    for (const [key, { modifiedMs }] of [...this.#objects]) {
      yield { key: key as ArtifactKey, modifiedMs }
    }
  }

  async delete(key: ArtifactKey): Promise<void> {
    this.#objects.delete(key)
  }

  /** Files cannot sign URLs: berth takes the upload itself (an HMAC-signed berth URL). */
  async presignPut(): Promise<undefined> {
    return undefined
  }

  async presignGet(): Promise<undefined> {
    return undefined
  }

  urlOf(key: ArtifactKey): string {
    return `memory:///${key}`
  }

  async close(): Promise<void> {}
}
