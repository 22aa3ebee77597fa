import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js'
import { closedStoreContract, metadataStoreContract } from './metadata-store.contract.js'

metadataStoreContract('memory', async () => new MemoryMetadataStore())
closedStoreContract('memory', async () => new MemoryMetadataStore())
