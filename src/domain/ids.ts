import { randomBytes } from 'node:crypto'

export type IdPrefix = 'org' | 'key' | 'ns' | 'upl'

/** A new random id such as `ns_3f9c0a1b2c4d5e6f7a8b`: the prefix, `_`, 80 random bits in hex. */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(10).toString('hex')}`
}

/** True when `ref` has the shape of an id with this prefix (it may still not exist). */
export function looksLikeId(prefix: IdPrefix, ref: string): boolean {
  return new RegExp(`^${prefix}_[0-9a-f]{20}$`).test(ref)
}
