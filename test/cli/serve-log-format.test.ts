import assert from 'node:assert/strict'
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { BERTH_BIN } from '../helpers/berth-process.js'
import { tempDir } from '../helpers/temp-dir.js'

/** util-linux's `script`, which runs a command on a pseudo-terminal (Debian: bsdutils). */
function hasScript(): boolean {
  try {
    return execFileSync('script', ['--version']).toString().includes('util-linux')
  } catch {
    return false
  }
}

/** Resolves everything `child` wrote to stdout up to its "listening" line. */
function untilListening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = ''
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${output}`)), 20_000)
    child.stdout?.on('data', (chunk) => {
      output += String(chunk)
      if (/listening at http/.test(output) && output.endsWith('\n')) {
        clearTimeout(timer)
        resolve(output)
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`exited before listening:\n${output}`))
    })
  })
}

function serveEnv(dataDir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    BERTH_PORT: '0',
    BERTH_DATA_DIR: dataDir,
    BERTH_LOG_FORMAT: 'auto',
    BERTH_LOG_LEVEL: 'info',
  }
}

describe('BERTH_LOG_FORMAT=auto', () => {
  it('writes JSON lines when stdout is a pipe', async () => {
    const dir = await tempDir()
    const child = spawn(BERTH_BIN, ['serve'], {
      env: serveEnv(join(dir.path, 'data')),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const output = await untilListening(child)
      const line = output.split('\n').find((l) => l.includes('listening at')) ?? ''
      const record = JSON.parse(line) as { level: string; msg: string }
      assert.match(record.msg, /^Server listening at http:\/\/127\.0\.0\.1:\d+$/)
      assert.equal(record.level, 'info')
    } finally {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
      await dir.remove()
    }
  })

  it('writes pretty, coloured lines when stdout is a terminal', async (t) => {
    if (!hasScript()) {
      t.skip("util-linux's `script` is not installed: no pseudo-terminal to run berth on")
      return
    }
    const dir = await tempDir()
    // `script` gives berth a pseudo-terminal for stdout and copies what it writes to ours.
    const terminal = spawn('script', ['-qfec', `exec ${BERTH_BIN} serve`, '/dev/null'], {
      env: serveEnv(join(dir.path, 'data')),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    try {
      const output = await untilListening(terminal)
      const line = output.split('\n').find((l) => l.includes('listening at')) ?? ''
      assert.throws(() => JSON.parse(line), 'a terminal got a JSON line')
      assert.match(line, /INFO/)
      // Coloured: pino-pretty colours only for a terminal.
      assert.ok(line.includes('\u001b['), 'no colour codes on a terminal')
    } finally {
      // berth, the only child of `script`, stops as it would on a terminal's Ctrl-C.
      const children = await readFile(
        `/proc/${terminal.pid}/task/${terminal.pid}/children`,
        'utf8',
      ).catch(() => '')
      const exited = once(terminal, 'exit')
      for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
        process.kill(Number(pid), 'SIGINT')
      }
      if (children.trim() === '') terminal.kill('SIGTERM')
      const [code] = await exited
      assert.equal(code, 0, 'berth did not stop cleanly on SIGINT')
      await dir.remove()
    }
  })
})
