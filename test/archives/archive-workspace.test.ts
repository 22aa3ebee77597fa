import assert from 'node:assert/strict'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { it } from 'node:test'
import { ArchiveWorkspace } from '../../src/archives/archive-workspace.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { tempDir } from '../helpers/temp-dir.js'

it('stages with a hash, refuses past the limit leaving nothing, and sweeps only what no request owns', async () => {
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

    // A crash (or a cleanup that failed) left an unpack folder a moment ago; the staged file and
    // the unpack folder handed out to live requests stay, however old.
    const left = join(dir.path, 'tmp', 'unpack-crashed')
    await mkdir(left)
    await writeFile(join(left, 'model.onnx'), 'x')
    const unpacking = await workspace.newUnpackDir()
    const dayAgo = new Date(Date.now() - 24 * 3600_000)
    await utimes(staged.path, dayAgo, dayAgo)
    assert.equal(await workspace.sweepUnowned(), 1)
    const live = [staged.path, unpacking].map((p) => p.split('/').pop()).sort()
    assert.deepEqual((await readdir(join(dir.path, 'tmp'))).sort(), live)

    // Released (removed, or installed as a model's files): nothing of it is left to sweep.
    await workspace.install(unpacking, 'ns_1', 'upl_1')
    await workspace.remove(staged.path)
    assert.equal(await workspace.sweepUnowned(), 0)
    assert.deepEqual(await readdir(join(dir.path, 'tmp')), [])
  } finally {
    await dir.remove()
  }
})
