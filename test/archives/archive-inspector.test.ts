import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { inspectArchive } from '../../src/archives/archive-inspector.js'
import type { ArchiveLimits } from '../../src/archives/archive-limits.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { HOSTILE_ARCHIVES } from '../fixtures/hostile-archives.js'
import { tarGz, tarGzOf, writeZeroBomb } from '../fixtures/tar-builder.js'
import { tempDir } from '../helpers/temp-dir.js'

const LIMITS: ArchiveLimits = {
  maxEntries: 10_000,
  maxUnpackedBytes: 8 * 1024 ** 3,
  maxCompressionRatio: 50,
  ratioGraceBytes: 64 * 1024 ** 2,
}

describe('archive inspection', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let n = 0
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  /** Writes the archive, inspects it into a fresh folder inside a fresh sandbox. */
  async function inspect(archive: Buffer | ((path: string) => Promise<void>), limits = LIMITS) {
    const sandbox = join(dir.path, `case-${n++}`)
    const archivePath = join(dir.path, `archive-${n}.tar.gz`)
    if (typeof archive === 'function') await archive(archivePath)
    else await writeFile(archivePath, archive)
    const { mkdir } = await import('node:fs/promises')
    await mkdir(join(sandbox, 'out'), { recursive: true })
    const result = inspectArchive(archivePath, join(sandbox, 'out'), limits)
    return { result, sandbox }
  }

  async function rejects(archive: Parameters<typeof inspect>[0], code: ErrorCode, limits = LIMITS) {
    const { result, sandbox } = await inspect(archive, limits)
    await assert.rejects(
      result,
      (err) => isBerthError(err, code) && err.kind === 'invalid_argument',
    )
    // Whatever happened, nothing appeared beside the destination folder.
    assert.deepEqual(await readdir(sandbox), ['out'])
  }

  it('extracts files, hashes them and strips one wrapping folder', async () => {
    const weights = randomBytes(3000)
    const archive = await tarGz([
      { header: { name: 'my-model/', type: 'directory' } },
      { header: { name: 'my-model/model.onnx' }, content: weights },
      { header: { name: 'my-model/./sub//config.json' }, content: '{"a":1}' },
    ])
    const { result } = await inspect(archive)
    const inspected = await result
    assert.deepEqual(
      inspected.files.map((f) => f.path),
      ['model.onnx', 'sub/config.json'],
    )
    assert.equal(inspected.files[0]?.sha256, createHash('sha256').update(weights).digest('hex'))
    assert.equal(inspected.files[0]?.sizeBytes, 3000)
    assert.equal(inspected.unpackedBytes, 3007)
    assert.deepEqual(await readFile(join(inspected.root, 'model.onnx')), weights)
  })

  it('reads archives made with `tar -C dir .` (a "./" root entry)', async () => {
    const { result } = await inspect(
      await tarGz([
        { header: { name: './', type: 'directory' } },
        { header: { name: './model.onnx' }, content: 'weights' },
        { header: { name: './sub/', type: 'directory' } },
        { header: { name: './sub/config.json' }, content: '{}' },
      ]),
    )
    assert.deepEqual(
      (await result).files.map((f) => f.path),
      ['model.onnx', 'sub/config.json'],
    )
  })

  it('refuses a file entry named like the root', async () => {
    await rejects(await tarGz([{ header: { name: './' }, content: 'x' }]), 'archive_invalid_path')
  })

  it('keeps the layout when files sit at the top level', async () => {
    const { result } = await inspect(await tarGzOf({ 'model.onnx': 'x', 'extra/notes.txt': 'y' }))
    assert.deepEqual(
      (await result).files.map((f) => f.path),
      ['extra/notes.txt', 'model.onnx'],
    )
  })

  for (const hostile of HOSTILE_ARCHIVES) {
    it(`refuses ${hostile.what} (${hostile.code})`, async () => {
      await rejects(hostile.write, hostile.code)
    })
  }

  it('refuses more unpacked bytes than allowed, from the declared sizes', async () => {
    await rejects(
      await tarGzOf({ 'model.onnx': Buffer.alloc(10_000) }),
      'archive_unpacked_too_large',
      { ...LIMITS, maxUnpackedBytes: 4096 },
    )
  })

  it('stops the same bomb on unpacked size when the ratio check allows it', async () => {
    await rejects((path) => writeZeroBomb(path, 4 * 1024 ** 3), 'archive_unpacked_too_large', {
      ...LIMITS,
      maxCompressionRatio: 1e9,
      maxUnpackedBytes: 256 * 1024 ** 2,
    })
  })
})
