import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { ArchiveWorkspace } from '../../src/archives/archive-workspace.js'
import { artifactKey } from '../../src/artifacts/artifact-key.js'
import { MemoryArtifactStore } from '../../src/artifacts/memory/memory-artifact-store.js'
import type { Model } from '../../src/domain/model.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { InstalledModels } from '../../src/registry/installed-models.js'
import { modelRecord } from '../fixtures/model-records.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { tempDir } from '../helpers/temp-dir.js'

const NAMESPACE = { id: 'ns_0123456789abcdef0123', organizationId: 'org_1' }

describe('InstalledModels.installLocally', () => {
  let dir: { path: string; remove(): Promise<void> }
  let installed: InstalledModels
  const artifacts = new MemoryArtifactStore()

  /** A model whose archive is in the artifact store, recorded with `sha256` (its own if absent). */
  async function storedModel(sha256?: string): Promise<Model> {
    const archive = await tarGzOf({ 'model.onnx': 'not really onnx: installs do not parse' })
    const model = modelRecord(NAMESPACE)
    const key = artifactKey(NAMESPACE.id, `${model.uploadId}.tar.gz`)
    await artifacts.put(key, Readable.from([archive]))
    const recorded = sha256 ?? createHash('sha256').update(archive).digest('hex')
    return { ...model, archive: { ...model.archive, key, sha256: recorded } }
  }

  before(async () => {
    dir = await tempDir()
    installed = new InstalledModels(
      {
        workspace: new ArchiveWorkspace(dir.path),
        artifacts,
        metadata: { listModels: async () => [] },
      },
      {
        maxArchiveBytes: 1024 * 1024,
        archiveLimits: {
          maxEntries: 10,
          maxUnpackedBytes: 1024 * 1024,
          maxCompressionRatio: 100,
          ratioGraceBytes: 1024 * 1024,
        },
      },
    )
  })
  after(() => dir.remove())

  it('fetches, checks and unpacks a model stored by another instance', async () => {
    const model = await storedModel()
    await installed.installLocally(model)
    const files = await readdir(installed.dirOf(model))
    assert.deepEqual(files, ['model.onnx'])
    assert.match(await readFile(join(installed.dirOf(model), 'model.onnx'), 'utf8'), /^not really/)
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
  })

  it('refuses an archive whose SHA-256 is not the recorded one, keeping nothing', async () => {
    const model = await storedModel('ab'.repeat(32))
    await assert.rejects(installed.installLocally(model), (err) => {
      assert.ok(isBerthError(err, 'stored_archive_corrupt'), String(err))
      assert.deepEqual(err.details, { namespace_id: NAMESPACE.id, model_id: model.modelId })
      return true
    })
    await assert.rejects(readdir(installed.dirOf(model)), { code: 'ENOENT' })
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
  })
})
