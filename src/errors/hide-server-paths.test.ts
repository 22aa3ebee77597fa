import assert from 'node:assert/strict'
import { it } from 'node:test'
import { BerthError } from './berth-error.js'
import { hideServerPaths, withServerPathsHidden } from './hide-server-paths.js'

const ROOT = '/srv/berth/data/models/ns_1/upl_2'

it('shows paths under the model folder relative to it', () => {
  assert.equal(
    hideServerPaths(`Load model from ${ROOT}/onnx/model.onnx failed: bad`, ROOT),
    'Load model from onnx/model.onnx failed: bad',
  )
  assert.equal(hideServerPaths(`cannot open '${ROOT}'`, `${ROOT}/`), "cannot open '.'")
})

it('cuts any other absolute path to its last part, and leaves the rest of the text alone', () => {
  assert.equal(
    hideServerPaths(
      "ENOENT: no such file or directory, open '/var/lib/berth/tmp/unpack-1/config.json'",
      ROOT,
    ),
    "ENOENT: no such file or directory, open 'config.json'",
  )
  assert.equal(hideServerPaths('(/usr/lib/libonnxruntime.so.1)', ROOT), '(libonnxruntime.so.1)')
  const plain = 'shape [1/2] vs 3/4, ratio 1 / 2, input_ids: int64'
  assert.equal(hideServerPaths(plain, ROOT), plain)
})

it('keeps the code and details of a berth error, and anything else as it is', () => {
  const err = new BerthError('model_load_failed', `bad ${ROOT}/model.onnx`, {
    details: { reason: 'x' },
  })
  const hidden = withServerPathsHidden(err, ROOT) as BerthError
  assert.equal(hidden.code, 'model_load_failed')
  assert.equal(hidden.message, 'bad model.onnx')
  assert.deepEqual(hidden.details, { reason: 'x' })
  assert.equal(hidden.cause, err)
  const other = new Error(`bad ${ROOT}`)
  assert.equal(withServerPathsHidden(other, ROOT), other)
})
