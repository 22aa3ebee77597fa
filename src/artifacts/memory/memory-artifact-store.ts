import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { BerthError } from '../../errors/berth-error.js'
import type { ArtifactKey, ArtifactStore } from '../artifact-store.js'

/** Archives in memory: the fast test double. Passes the same contract suite as the real stores. */
export class MemoryArtifactStore implements ArtifactStore {
  readonly #objects = new Map<string, Buffer>()

  async put(key: ArtifactKey, source: Readable): Promise<{ sizeBytes: number }> {
    const chunks: Buffer[] = []
    for await (const chunk of source) chunks.push(Buffer.from(chunk as Uint8Array))
    if (this.#objects.has(key)) {
      throw new BerthError('artifact_exists', `artifact "${key}" already exists`, {
        details: { key },
      })
    }
    const body = Buffer.concat(chunks)
    this.#objects.set(key, body)
    return { sizeBytes: body.length }
  }

  putFile(key: ArtifactKey, path: string): Promise<{ sizeBytes: number }> {
    return this.put(key, createReadStream(path))
  }

  async get(key: ArtifactKey): Promise<Readable> {
    const body = this.#objects.get(key)
    if (body === undefined) {
      throw new BerthError('artifact_not_found', `artifact "${key}" not found`, {
        details: { key },
      })
    }
    return Readable.from([body])
  }

  async stat(key: ArtifactKey): Promise<{ sizeBytes: number } | undefined> {
    const body = this.#objects.get(key)
    return body === undefined ? undefined : { sizeBytes: body.length }
  }

  async delete(key: ArtifactKey): Promise<void> {
    this.#objects.delete(key)
  }

  urlOf(key: ArtifactKey): string {
    return `memory:///${key}`
  }

  async close(): Promise<void> {}
}
