import assert from 'node:assert/strict'

/** Each value within `tolerance` of the one wanted, and as many values as wanted. */
export function assertClose(got: readonly number[], want: readonly number[], tolerance = 1e-5) {
  assert.equal(got.length, want.length)
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs((got[i] as number) - (want[i] as number)) <= tolerance, `element ${i}`)
  }
}

/** An Open Inference Protocol binary-extension body: the JSON header, then the raw tensors. */
export function binaryBody(header: object, ...tensors: Buffer[]) {
  const json = Buffer.from(JSON.stringify(header))
  return {
    body: Buffer.concat([json, ...tensors]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(json.length),
    },
  }
}
