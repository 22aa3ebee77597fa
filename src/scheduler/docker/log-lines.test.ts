import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LogLines } from './log-lines.js'

/** One frame of the engine's log stream: `stream` 1 stdout, 2 stderr. */
function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text)
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

describe('LogLines', () => {
  it('hands on whole lines of both streams, however the frames and chunks split them', () => {
    const got: string[] = []
    const lines = new LogLines((line) => got.push(line))
    const bytes = Buffer.concat([
      frame(1, 'loading the mo'),
      frame(2, 'warn: slow\r\nsecond\n'),
      frame(1, 'del\nready\n'),
      frame(2, 'unfinished'),
    ])
    // One byte at a time: headers and payloads cut anywhere.
    for (let i = 0; i < bytes.length; i++) lines.push(bytes.subarray(i, i + 1))
    assert.deepEqual(got, ['warn: slow', 'second', 'loading the model', 'ready'])
    lines.end()
    assert.deepEqual(got.at(-1), 'unfinished')
  })

  it('cuts a line that never ends into pieces instead of holding it', () => {
    const got: string[] = []
    const lines = new LogLines((line) => got.push(line))
    lines.push(frame(1, 'x'.repeat(40 * 1024)))
    assert.deepEqual(
      got.map((l) => l.length),
      [16 * 1024, 16 * 1024],
    )
    lines.end()
    assert.equal(got.at(-1)?.length, 8 * 1024)
  })
})
