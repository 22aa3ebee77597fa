import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { gzipSync } from 'node:zlib'
import { inspectArchive } from '../../src/archives/archive-inspector.js'
import type { ArchiveLimits } from '../../src/archives/archive-limits.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import { type TarEntry, tarBytes, tarGz, tarGzOf, writeZeroBomb } from '../fixtures/tar-builder.js'
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

  it('keeps the layout when files sit at the top level', async () => {
    const { result } = await inspect(await tarGzOf({ 'model.onnx': 'x', 'extra/notes.txt': 'y' }))
    assert.deepEqual(
      (await result).files.map((f) => f.path),
      ['extra/notes.txt', 'model.onnx'],
    )
  })

  it('refuses data that is not gzip', async () => {
    await rejects(Buffer.from('just some text, not an archive'), 'archive_not_gzip')
    await rejects(Buffer.alloc(0), 'archive_not_gzip')
    const corrupt = Buffer.from(await tarGzOf({ 'model.onnx': randomBytes(5000) }))
    // A wrong CRC in the gzip trailer: zlib reports corrupt data.
    corrupt.fill(0x00, corrupt.length - 8, corrupt.length - 4)
    await rejects(corrupt, 'archive_not_gzip')
  })

  it('refuses gzip that does not hold a tar', async () => {
    await rejects(gzipSync(randomBytes(4096)), 'archive_not_tar')
  })

  it('refuses truncated archives', async () => {
    const whole = await tarGzOf({ 'model.onnx': randomBytes(200_000) })
    await rejects(whole.subarray(0, Math.floor(whole.length / 2)), 'archive_truncated')
    const tar = await tarBytes([{ header: { name: 'model.onnx' }, content: randomBytes(5000) }])
    await rejects(gzipSync(tar.subarray(0, 2048)), 'archive_truncated')
  })

  const hostile: ReadonlyArray<readonly [string, TarEntry, ErrorCode]> = [
    [
      'a symbolic link',
      { header: { name: 'm/link', type: 'symlink', linkname: '/etc/passwd' } },
      'archive_has_symlink',
    ],
    [
      'a hard link',
      { header: { name: 'm/hard', type: 'link', linkname: 'm/model.onnx' } },
      'archive_has_hardlink',
    ],
    [
      'a character device',
      { header: { name: 'm/tty', type: 'character-device', devmajor: 5, devminor: 0 } },
      'archive_has_device',
    ],
    [
      'a block device',
      { header: { name: 'm/sda', type: 'block-device', devmajor: 8, devminor: 0 } },
      'archive_has_device',
    ],
    ['a FIFO', { header: { name: 'm/pipe', type: 'fifo' } }, 'archive_has_fifo'],
    [
      'an absolute path',
      { header: { name: '/tmp/berth-evil' }, content: 'x' },
      'archive_absolute_path',
    ],
    [
      'a ".." segment',
      { header: { name: 'm/../../berth-evil' }, content: 'x' },
      'archive_path_traversal',
    ],
    [
      'a ".." inside a PAX long name',
      {
        header: {
          name: `${'deep/'.repeat(40)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../berth-evil`,
        },
        content: 'x',
      },
      'archive_path_traversal',
    ],
    ['a backslash path', { header: { name: 'm\\..\\evil' }, content: 'x' }, 'archive_invalid_path'],
  ]
  for (const [what, entry, code] of hostile) {
    it(`refuses ${what} (${code})`, async () => {
      await rejects(
        await tarGz([{ header: { name: 'm/model.onnx' }, content: 'weights' }, entry]),
        code,
      )
    })
  }

  it('refuses a path given twice, or as both file and folder', async () => {
    await rejects(
      await tarGz([
        { header: { name: 'm/model.onnx' }, content: 'a' },
        { header: { name: 'm/model.onnx' }, content: 'b' },
      ]),
      'archive_duplicate_path',
    )
    await rejects(
      await tarGz([
        { header: { name: 'm/model.onnx' }, content: 'a' },
        { header: { name: 'm/./model.onnx' }, content: 'b' },
      ]),
      'archive_duplicate_path',
    )
    await rejects(
      await tarGz([
        { header: { name: 'm/weights' }, content: 'a' },
        { header: { name: 'm/weights/shard.bin' }, content: 'b' },
      ]),
      'archive_duplicate_path',
    )
  })

  it('refuses an archive without files', async () => {
    await rejects(await tarGz([{ header: { name: 'empty/', type: 'directory' } }]), 'archive_empty')
    await rejects(await tarGz([]), 'archive_empty')
  })

  it('refuses more entries than allowed (20,000 against 10,000)', async () => {
    const entries = Array.from({ length: 20_000 }, (_, i) => ({
      header: { name: `m/f${i}` },
      content: '',
    }))
    await rejects(await tarGz(entries), 'archive_too_many_entries')
  })

  it('refuses more unpacked bytes than allowed, from the declared sizes', async () => {
    await rejects(
      await tarGzOf({ 'model.onnx': Buffer.alloc(10_000) }),
      'archive_unpacked_too_large',
      { ...LIMITS, maxUnpackedBytes: 4096 },
    )
  })

  it('stops a 4 GiB zero bomb early on its compression ratio', async () => {
    const started = Date.now()
    await rejects(
      (path) => writeZeroBomb(path, 4 * 1024 ** 3),
      'archive_compression_ratio_exceeded',
    )
    // It stopped near the 64 MiB grace, not after 4 GiB (this bound is generous on purpose).
    assert.ok(Date.now() - started < 20_000)
  })

  it('stops the same bomb on unpacked size when the ratio check allows it', async () => {
    await rejects((path) => writeZeroBomb(path, 4 * 1024 ** 3), 'archive_unpacked_too_large', {
      ...LIMITS,
      maxCompressionRatio: 1e9,
      maxUnpackedBytes: 256 * 1024 ** 2,
    })
  })
})
