import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { it } from 'node:test'
import type { ArchiveLimits } from '../../src/archives/archive-limits.js'
import { ArchiveWorkspace } from '../../src/archives/archive-workspace.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { HOSTILE_ARCHIVES } from '../fixtures/hostile-archives.js'
import { gzipPrefix, tarBytes, tarGzOf } from '../fixtures/tar-builder.js'
import { tempDir } from '../helpers/temp-dir.js'

/** Runs `test` with a workspace in a new temp dir (its data dir), removed afterwards. */
async function inWorkspace(
  test: (workspace: ArchiveWorkspace, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await tempDir()
  try {
    await test(new ArchiveWorkspace(dir.path), dir.path)
  } finally {
    await dir.remove()
  }
}

const LIMITS: ArchiveLimits = {
  maxEntries: 10_000,
  maxUnpackedBytes: 8 * 1024 ** 3,
  maxCompressionRatio: 50,
  ratioGraceBytes: 64 * 1024 ** 2,
}

it('stages with a hash, refuses past the limit leaving nothing, and sweeps only what no request owns', () =>
  inWorkspace(async (workspace, dir) => {
    const staged = await workspace.stage(Readable.from([Buffer.from('abc')]), 10)
    assert.equal(staged.sizeBytes, 3)
    assert.equal(staged.sha256, 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    await assert.rejects(
      workspace.stage(Readable.from([Buffer.alloc(8), Buffer.alloc(8)]), 10),
      (err) => isBerthError(err, 'archive_too_large'),
    )
    assert.deepEqual(await readdir(join(dir, 'tmp')), [staged.path.split('/').pop()])

    // A crash (or a cleanup that failed) left an unpack folder a moment ago; the staged file and
    // the unpack folder handed out to live requests stay, however old.
    const left = join(dir, 'tmp', 'unpack-crashed')
    await mkdir(left)
    await writeFile(join(left, 'model.onnx'), 'x')
    const unpacking = await workspace.newUnpackDir()
    const dayAgo = new Date(Date.now() - 24 * 3600_000)
    await utimes(staged.path, dayAgo, dayAgo)
    assert.equal(await workspace.sweepUnowned(), 1)
    const live = [staged.path, unpacking].map((p) => p.split('/').pop()).sort()
    assert.deepEqual((await readdir(join(dir, 'tmp'))).sort(), live)

    // Released (removed, or installed as a model's files): nothing of it is left to sweep.
    await workspace.install(unpacking, 'ns_1', 'upl_1')
    await workspace.remove(staged.path)
    assert.equal(await workspace.sweepUnowned(), 0)
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  }))

it('stages and unpacks in one pass: the archive hashed whole, its files hashed and in place', () =>
  inWorkspace(async (workspace, dir) => {
    const weights = randomBytes(3 * 1024 * 1024)
    const archive = await tarGzOf({ 'm/model.onnx': weights, 'm/config.json': '{}' })
    // Small chunks: many turns of the staging and unpacking sides waiting for each other.
    const chunks = Array.from({ length: Math.ceil(archive.length / 4096) }, (_, i) =>
      archive.subarray(i * 4096, (i + 1) * 4096),
    )
    const staged = await workspace.stageAndUnpack(Readable.from(chunks), 10 * 1024 ** 2, LIMITS)
    assert.equal(staged.sha256, createHash('sha256').update(archive).digest('hex'))
    assert.equal(staged.sizeBytes, archive.length)
    assert.deepEqual(await readFile(staged.path), archive)
    assert.deepEqual(
      staged.inspected.files.map((f) => [f.path, f.sizeBytes]),
      [
        ['config.json', 2],
        ['model.onnx', weights.length],
      ],
    )
    assert.deepEqual(await readFile(join(staged.inspected.root, 'model.onnx')), weights)
    assert.equal(
      staged.inspected.files[1]?.sha256,
      createHash('sha256').update(weights).digest('hex'),
    )
    await workspace.remove(staged.path)
    await workspace.remove(staged.unpackDir)
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  }))

it('refuses every hostile archive in one pass with its own code, leaving nothing', () =>
  inWorkspace(async (workspace, dir) => {
    for (const hostile of HOSTILE_ARCHIVES) {
      const path = join(dir, 'hostile.bin')
      await hostile.write(path)
      const source = Readable.from([await readFile(path)])
      await assert.rejects(
        workspace.stageAndUnpack(source, 64 * 1024 ** 2, LIMITS),
        (err) => isBerthError(err, hostile.code),
        hostile.what,
      )
      assert.deepEqual(await readdir(join(dir, 'tmp')), [], hostile.what)
    }
  }))

it(
  'refuses a bad archive before its body ends, and stops reading it',
  {
    timeout: 10_000,
  },
  () =>
    inWorkspace(async (workspace, dir) => {
      const tar = await tarBytes([
        { header: { name: 'link', type: 'symlink', linkname: '/etc/passwd' } },
        { header: { name: 'model.onnx' }, content: randomBytes(64 * 1024) },
      ])
      // The symlink's header arrives; the rest of the body never does.
      const source = new PassThrough()
      source.write(await gzipPrefix(tar.subarray(0, 1024)))
      await assert.rejects(workspace.stageAndUnpack(source, 10 * 1024 ** 2, LIMITS), (err) =>
        isBerthError(err, 'archive_has_symlink'),
      )
      assert.equal(source.destroyed, true, 'the body is read no further')
      assert.deepEqual(await readdir(join(dir, 'tmp')), [])
    }),
)

it('answers a staging fault over the cut-short archive it leaves to the unpacking side', () =>
  inWorkspace(async (workspace, dir) => {
    const archive = await tarGzOf({ 'model.onnx': randomBytes(256 * 1024) })
    await assert.rejects(
      workspace.stageAndUnpack(Readable.from([archive]), 100 * 1024, LIMITS),
      (err) => isBerthError(err, 'archive_too_large'),
    )
    const cut = new PassThrough()
    cut.write(archive.subarray(0, 50 * 1024))
    setTimeout(() => cut.destroy(new Error('the client went away')), 50)
    await assert.rejects(
      workspace.stageAndUnpack(cut, 10 * 1024 ** 2, LIMITS),
      /the client went away/,
    )
    assert.deepEqual(await readdir(join(dir, 'tmp')), [])
  }))
