import { BerthError } from '../errors/berth-error.js'
import type { ArtifactKey } from './artifact-store.js'

// One builder per error, shared by every ArtifactStore adapter.

export function artifactExists(key: ArtifactKey, cause?: unknown): BerthError {
  return new BerthError('artifact_exists', `artifact "${key}" already exists`, {
    details: { key },
    cause,
  })
}

export function artifactNotFound(key: ArtifactKey, cause?: unknown): BerthError {
  return new BerthError('artifact_not_found', `artifact "${key}" not found`, {
    details: { key },
    cause,
  })
}
