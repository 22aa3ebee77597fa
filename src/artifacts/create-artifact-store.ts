import type { ArtifactsConfig } from '../config/config.js'
import type { ArtifactStore } from './artifact-store.js'

/** The only place that knows every artifact adapter; imports lazily. */
export async function createArtifactStore(config: ArtifactsConfig): Promise<ArtifactStore> {
  switch (config.driver) {
    case 'fs': {
      const { FsArtifactStore } = await import('./fs/fs-artifact-store.js')
      return new FsArtifactStore(config)
    }
    case 's3': {
      const { S3ArtifactStore } = await import('./s3/s3-artifact-store.js')
      return S3ArtifactStore.open(config)
    }
  }
}
