import { MemoryArtifactStore } from '../../src/artifacts/memory/memory-artifact-store.js'
import { artifactStoreContract } from './artifact-store.contract.js'

artifactStoreContract('memory', async () => new MemoryArtifactStore())
