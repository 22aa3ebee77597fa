import assert from 'node:assert/strict'
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { it } from 'node:test'
import { createApp } from '../../src/app.js'
import { createLogger } from '../../src/observability/logger.js'
import { mlpModel } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { startTestApp } from '../helpers/test-app.js'
import { archivePart, createNamespace, formFields, uploadModel } from '../helpers/uploads.js'

it('removes, at start, unpacked model folders that no record owns, however fresh, and keeps the others', async () => {
  const t = await startTestApp()
  try {
    const ns = await createNamespace(t, 'orphans')
    const res = await uploadModel(t, ns, [
      ...formFields({ name: 'kept', version: '1.0.0', model_format: 'onnx' }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(res.statusCode, 200, res.body)
    await t.app.close()

    // A crash between installing files and recording the model left these folders; the data
    // directory's lock proves no live upload of another server owns them, however fresh.
    const models = join(t.dataDir, 'models', ns)
    const orphan = join(models, 'upl_00000000000000000000')
    await mkdir(orphan)
    await writeFile(join(orphan, 'model.onnx'), 'x')
    const dayAgo = new Date(Date.now() - 24 * 3600_000)
    for (const dir of await readdir(models)) await utimes(join(models, dir), dayAgo, dayAgo)
    await mkdir(join(models, 'upl_11111111111111111111'))

    const again = await createApp(t.config, { logger: createLogger('silent') })
    await again.close()
    const left = await readdir(models)
    assert.equal(left.length, 1)
    assert.ok(!left.includes('upl_00000000000000000000'), 'the stale orphan was removed')
    assert.ok(!left.includes('upl_11111111111111111111'), 'the fresh orphan was removed')
  } finally {
    await t.close()
  }
})

it('removes stored archives no record holds once older than the grace, and never a held one', async () => {
  const t = await startTestApp()
  try {
    const ns = await createNamespace(t, 'orphan-archives')
    const res = await uploadModel(t, ns, [
      ...formFields({ name: 'held', version: '1.0.0', model_format: 'onnx' }),
      archivePart(await tarGzOf({ 'model.onnx': mlpModel() })),
    ])
    assert.equal(res.statusCode, 200, res.body)
    await t.app.close()

    // A crash between storing an archive and recording its model (or between deleting a record
    // and its archive) left these; so did a put cut off mid-write.
    const archives = join(t.dataDir, 'archives', ns)
    const held = await readdir(archives)
    assert.equal(held.length, 1)
    const stale = join(archives, 'upl_00000000000000000000.tar.gz')
    const tempLeft = join(archives, '.tmp-cut-off')
    const fresh = join(archives, 'upl_11111111111111111111.tar.gz')
    for (const path of [stale, tempLeft, fresh]) await writeFile(path, 'x')
    const dayAgo = new Date(Date.now() - 24 * 3600_000)
    for (const name of [...held, 'upl_00000000000000000000.tar.gz', '.tmp-cut-off']) {
      await utimes(join(archives, name), dayAgo, dayAgo)
    }

    // A fresh one may be another instance's upload about to be recorded: kept.
    const again = await createApp(t.config, { logger: createLogger('silent') })
    await again.close()
    assert.deepEqual(
      (await readdir(archives)).sort(),
      [...held, 'upl_11111111111111111111.tar.gz'].sort(),
    )

    // What berth never writes stays, however old: the folder or bucket may hold other things.
    const foreign = join(t.dataDir, 'archives', 'other-app')
    await mkdir(foreign)
    await writeFile(join(foreign, 'data.bin'), 'not berth')
    await writeFile(join(archives, 'notes.txt'), 'not berth')
    for (const path of [join(foreign, 'data.bin'), join(archives, 'notes.txt')]) {
      await utimes(path, dayAgo, dayAgo)
    }

    const noGrace = { ...t.config, limits: { ...t.config.limits, orphanGraceMs: 0 } }
    const last = await createApp(noGrace, { logger: createLogger('silent') })
    await last.close()
    assert.deepEqual((await readdir(archives)).sort(), [...held, 'notes.txt'].sort())
    assert.deepEqual(await readdir(foreign), ['data.bin'])
  } finally {
    await t.close()
  }
})

it('removes at start what an upload cut off by a crash left in tmp/, however fresh', async () => {
  const first = await startTestApp()
  const tmp = join(first.dataDir, 'tmp')
  await first.stop()
  // A server killed mid-upload: a staged archive written a moment ago.
  await mkdir(tmp, { recursive: true })
  await writeFile(join(tmp, 'upload-cut-off.tar.gz'), Buffer.alloc(1024, 1))
  const again = await createApp(first.config, { logger: createLogger('silent') })
  try {
    assert.deepEqual(await readdir(tmp), [])
  } finally {
    await again.close()
    await first.close()
  }
})
