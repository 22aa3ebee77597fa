import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export interface ApiKey {
  readonly id: string
  readonly organizationId: string
  /** SHA-256 of the key, hex. The key itself is never stored. */
  readonly hash: string
  readonly label: string | null
  readonly createdAt: string
  readonly revokedAt: string | null
}

/** `sk_` followed by 32 random bytes in base64url (43 characters). */
export function generateApiKey(): string {
  return `sk_${randomBytes(32).toString('base64url')}`
}

/**
 * Keys carry 256 random bits, so a plain SHA-256 is enough to make the stored value useless to
 * a thief; a slow password hash would only slow every request down.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

/** Constant-time comparison of two hex digests. */
export function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex')
  const right = Buffer.from(b, 'hex')
  return left.length === right.length && timingSafeEqual(left, right)
}
