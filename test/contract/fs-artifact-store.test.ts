import assert from 'node:assert/strict'
import { readdir } from 'node:fs/promises'
import { after, it } from 'node:test'
import { artifactKey } from '../../src/artifacts/artifact-key.js'
import { FsArtifactStore } from '../../src/artifacts/fs/fs-artifact-store.js'
import { tempDir } from '../helpers/temp-dir.js'
import { artifactStoreContract } from './artifact-store.contract.js'

const dir = await tempDir()
after(() => dir.remove())

artifactStoreContract(
  'fs',
  async () => new FsArtifactStore({ driver: 'fs', root: dir.path }),
  async () => (await readdir(dir.path, { recursive: true })).sort(),
)

it('fs: URLs name the object by its key, not by the server path holding it', () => {
  const store = new FsArtifactStore({ driver: 'fs', root: dir.path })
  assert.equal(store.urlOf(artifactKey('a', 'b.tar.gz')), 'berth://archives/a/b.tar.gz')
})

it('artifactKey refuses unsafe segments', () => {
  for (const bad of ['..', '.hidden', 'a/b', '', 'a..b', 'x y', '/abs']) {
    assert.throws(() => artifactKey('ns', bad), bad)
  }
})
