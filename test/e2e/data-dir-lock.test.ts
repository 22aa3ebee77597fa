import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFile, stat, utimes, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { DataDirLock } from '../../src/data-dir-lock.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { runBerth } from '../helpers/berth-process.js'
import { eventually, isGone } from '../helpers/processes.js'
import { tempDir } from '../helpers/temp-dir.js'
import { startTestApp } from '../helpers/test-app.js'
import { deployTinyMlp } from '../helpers/uploads.js'

describe('one server per data directory', () => {
  it('refuses a second holder while the first lives, and takes over after it is gone', async () => {
    const dir = await tempDir()
    try {
      const first = await DataDirLock.acquire(dir.path)
      await assert.rejects(DataDirLock.acquire(dir.path), (err) =>
        isBerthError(err, 'data_dir_locked'),
      )
      await first.release()
      await first.release()
      const again = await DataDirLock.acquire(dir.path)
      await again.release()
    } finally {
      await dir.remove()
    }
  })

  it('takes over a lock whose holder died, or whose pid now belongs to another process', async () => {
    const dir = await tempDir()
    try {
      const dead = spawnSync(process.execPath, ['-e', '']).pid
      await writeFile(join(dir.path, 'berth.lock'), JSON.stringify({ pid: dead, startedAt: '1' }))
      await (await DataDirLock.acquire(dir.path)).release()
      // This very pid, but started at another time: a reused pid, not the holder.
      const reused = { pid: process.pid, startedAt: 'not-this-process' }
      await writeFile(join(dir.path, 'berth.lock'), JSON.stringify(reused))
      await (await DataDirLock.acquire(dir.path)).release()
      await writeFile(join(dir.path, 'berth.lock'), 'half-written')
      await (await DataDirLock.acquire(dir.path)).release()
    } finally {
      await dir.remove()
    }
  })

  it('refuses a lock another machine keeps touching, and takes it over once it goes untouched', async () => {
    const dir = await tempDir()
    try {
      // A server elsewhere on a shared filesystem: its pid means nothing on this machine.
      const lock = join(dir.path, 'berth.lock')
      const elsewhere = { pid: process.pid, startedAt: '1', host: 'another-machine' }
      await writeFile(lock, JSON.stringify(elsewhere))
      await assert.rejects(
        DataDirLock.acquire(dir.path),
        (err) => isBerthError(err, 'data_dir_locked') && err.message.includes('another-machine'),
      )
      // Untouched for a minute by this clock, but touched while watched: its clock lags; it lives.
      const old = new Date(Date.now() - 61_000)
      await utimes(lock, old, old)
      const later = new Date(old.getTime() + 1000)
      setTimeout(() => void utimes(lock, later, later), 50)
      await assert.rejects(DataDirLock.acquire(dir.path, { heartbeatMs: 200 }), (err) =>
        isBerthError(err, 'data_dir_locked'),
      )
      // Untouched, and untouched while watched: that server is gone.
      await utimes(lock, old, old)
      await (await DataDirLock.acquire(dir.path, { heartbeatMs: 100 })).release()
    } finally {
      await dir.remove()
    }
  })

  it('touches its lock while it holds it, and leaves alone a lock taken over from it', async () => {
    const dir = await tempDir()
    try {
      const lock = join(dir.path, 'berth.lock')
      const held = await DataDirLock.acquire(dir.path, { heartbeatMs: 20 })
      const old = new Date(Date.now() - 61_000)
      await utimes(lock, old, old)
      await eventually(async () => (await stat(lock)).mtimeMs > old.getTime() + 30_000)
      // Another server took the directory over (this one was judged dead): not ours to remove.
      const other = { pid: process.pid, startedAt: '1', host: 'another-machine' }
      await writeFile(lock, JSON.stringify(other))
      await utimes(lock, old, old)
      await new Promise((resolve) => setTimeout(resolve, 100))
      assert.ok(Math.abs((await stat(lock)).mtimeMs - old.getTime()) < 1, 'no longer touched')
      await held.release()
      assert.deepEqual(JSON.parse(await readFile(lock, 'utf8')), other)
    } finally {
      await dir.remove()
    }
  })

  it("a second `berth serve` on a live server's directory refuses to start and ends none of its runners", async () => {
    const app = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
    try {
      const { runnerPids: runners } = await deployTinyMlp(app, 'locked')
      assert.ok(runners.length > 0)
      const lock = JSON.parse(await readFile(join(app.dataDir, 'berth.lock'), 'utf8'))
      assert.equal(lock.pid, process.pid)

      const second = await runBerth(['serve'], {
        BERTH_DATA_DIR: app.dataDir,
        BERTH_PORT: '0',
        BERTH_BOOTSTRAP_API_KEY: 'sk_second_server_key_0123456789',
      })
      assert.equal(second.code, 1, second.stderr)
      assert.match(second.stderr, /^berth: data_dir_locked: [^\n]+\n$/)
      assert.ok(
        runners.every((pid) => !isGone(pid)),
        'the first server kept its runners',
      )
      // `serve --help` explains, and starts nothing.
      const help = await runBerth(['serve', '--help'], { BERTH_DATA_DIR: app.dataDir })
      assert.equal(help.code, 0)
      assert.match(help.stdout, /^Usage: berth serve/)
      assert.ok(runners.every((pid) => !isGone(pid)))
    } finally {
      await app.close()
    }
  })
})
