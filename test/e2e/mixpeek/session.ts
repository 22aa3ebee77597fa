import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MixpeekAnswer, MixpeekCall, MixpeekContract } from '../../helpers/mixpeek-contract.js'
import { BOOTSTRAP_KEY, type TestApp } from '../../helpers/test-app.js'

/** The bootstrap organization's key: the first organization of the conformance run. */
export const KEY = BOOTSTRAP_KEY
/** A well-formed namespace id that no organization has. */
export const UNKNOWN_NAMESPACE = 'ns_00000000000000000000'

/**
 * One berth and Mixpeek's document, shared by the conformance scenarios in the order they run
 * (the namespace scenario makes `ns`, the model scenarios fill it).
 */
export class MixpeekSession {
  /** The main namespace: its id and name. */
  ns = { id: '', name: '' }

  readonly t: TestApp
  readonly mixpeek: MixpeekContract

  constructor(t: TestApp, mixpeek: MixpeekContract) {
    this.t = t
    this.mixpeek = mixpeek
  }

  /** Calls an operation and asserts the status; the call itself checks the answer's schema. */
  async expect(status: number, operationId: string, options: MixpeekCall = {}) {
    const answer = await this.mixpeek.call(this.t, operationId, options)
    assert.equal(answer.status, status, `${operationId}: ${JSON.stringify(answer.body)}`)
    return answer
  }

  /** berth's stable error code (an extra field of Mixpeek's `ErrorDetail`). */
  code(answer: MixpeekAnswer): string {
    return answer.body.error.code
  }

  /** Mixpeek's upload form for a model, from the document's schema; small enough to deploy. */
  uploadForm(fields: Record<string, unknown>) {
    return this.mixpeek.sampleBody('upload_model_v1_namespaces__namespace_id__models_post', {
      file: undefined,
      num_gpus: 0,
      memory_gb: 0.5,
      ...fields,
    })
  }

  /** PUTs an archive to a presigned URL (berth's own: the file store), as a client PUTs to S3. */
  putArchive(presignedUrl: string, archive: Buffer) {
    const url = new URL(presignedUrl)
    return this.t.request({
      method: 'PUT',
      url: `${url.pathname}${url.search}`,
      body: archive,
      headers: { 'content-type': 'application/gzip' },
    })
  }

  /** Polls Mixpeek's GET model until the deployment settles (Mixpeek's clients have no wait). */
  async settled(modelId: string) {
    for (;;) {
      const { body } = await this.expect(
        200,
        'get_model_v1_namespaces__namespace_id__models__model_id__get',
        { key: KEY, path: { namespace_id: this.ns.id, model_id: modelId } },
      )
      if (body.model.deployed || body.model.deployment?.state === 'failed') return body.model
      await sleep(50)
    }
  }
}
