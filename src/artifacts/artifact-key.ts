import type { ArtifactKey } from './artifact-store.js'

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

/**
 * The only way to build an ArtifactKey: `/`-joined segments of letters, digits, `.`, `_` and
 * `-`, none starting with a dot-dot or a dot. Callers pass validated ids, so a bad segment is a
 * bug and throws a plain Error.
 */
export function artifactKey(...segments: readonly string[]): ArtifactKey {
  if (segments.length === 0) throw new Error('an artifact key needs at least one segment')
  for (const segment of segments) {
    if (!SEGMENT.test(segment) || segment.includes('..')) {
      throw new Error(`unsafe artifact key segment: ${JSON.stringify(segment)}`)
    }
  }
  return segments.join('/') as ArtifactKey
}
