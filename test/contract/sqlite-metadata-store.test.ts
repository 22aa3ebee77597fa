import { join } from 'node:path'
import { after } from 'node:test'
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js'
import { tempDir } from '../helpers/temp-dir.js'
import { closedStoreContract, metadataStoreContract } from './metadata-store.contract.js'

const dir = await tempDir()
after(() => dir.remove())
let n = 0
const onDisk = () =>
  SqliteMetadataStore.open({ driver: 'sqlite', path: join(dir.path, `${n++}`, 'berth.db') })

metadataStoreContract('sqlite (file)', onDisk)
metadataStoreContract('sqlite (:memory:)', () =>
  SqliteMetadataStore.open({ driver: 'sqlite', path: ':memory:' }),
)
closedStoreContract('sqlite (file)', onDisk)
