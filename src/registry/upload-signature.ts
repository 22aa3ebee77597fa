import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * The expiring signature of a berth upload URL (`PUT /v1/models/uploads/{upload_id}/archive`),
 * for artifact stores that cannot presign URLs themselves: HMAC-SHA256 over the upload id and
 * the expiry, with a key only the servers know.
 */
export class UploadSignature {
  readonly #key: Buffer

  constructor(key: Buffer) {
    if (key.length < 32) throw new Error('the upload signing key needs at least 32 bytes')
    this.#key = key
  }

  /** Hex signature for the upload until `expiresUnix` (seconds). */
  sign(uploadId: string, expiresUnix: number): string {
    return createHmac('sha256', this.#key).update(`${uploadId}\n${expiresUnix}`).digest('hex')
  }

  /** Whether `signature` is the one for this upload and expiry, and the expiry has not passed. */
  verify(uploadId: string, expires: string, signature: string, nowMs: number): boolean {
    if (!/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature)) return false
    const expiresUnix = Number(expires)
    const want = Buffer.from(this.sign(uploadId, expiresUnix), 'hex')
    const got = Buffer.from(signature, 'hex')
    // Compared in constant time, and checked whatever the expiry, so timing says nothing.
    const valid = timingSafeEqual(want, got)
    return valid && expiresUnix * 1000 > nowMs
  }
}
