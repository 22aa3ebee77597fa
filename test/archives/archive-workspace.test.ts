import assert from 'node:assert/strict'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { it } from 'node:test'
import { ArchiveWorkspace } from '../../src/archives/archive-workspace.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { tempDir } from '../helpers/temp-dir.js'

it('stages with a hash, refuses past the limit leaving nothing, and sweeps only stale leftovers', async () => {
  const dir = await tempDir()
  try {
    const workspace = new ArchiveWorkspace(dir.path)
    const staged = await workspace.stage(Readable.from([Buffer.from('abc')]), 10)
    assert.equal(staged.sizeBytes, 3)
    assert.equal(staged.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    await assert.rejects(
      workspace.stage(Readable.from([Buffer.alloc(8), Buffer.alloc(8)]), 10),
      (err) => isBerthError(err, 'archive_too_large'),
    )
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [staged.path.split('/').pop()])

    // A crash left an unpack folder two hours ago; the live staged file stays.
    const stale = join(dir.path, 'tmp', 'unpack-crashed')
    await mkdir(stale)
    await writeFile(join(stale, 'model.onnx'), 'x')
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000)
    await utimes(stale, twoHoursAgo, twoHoursAgo)
    assert.equal(await workspace.sweepStale(3600_000), 1)
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [staged.path.split('/').pop()])
  } finally {
    await dir.remove()
  }
})
