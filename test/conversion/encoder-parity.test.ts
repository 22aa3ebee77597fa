import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import * as ort from 'onnxruntime-node'
import {
  encoderConfig,
  encoderInputs,
  encoderToOnnx,
} from '../../src/conversion/encoder-to-onnx.js'
import { CONVERTIBLE_FAMILIES } from '../../src/domain/encoder-families.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { openWeights } from '../../src/formats/weights-reader.js'
import { type EncoderReference, makeEncoders, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'

const TOLERANCE = 1e-4

function maxAbsError(got: ArrayLike<number>, want: number[]): number {
  assert.equal(got.length, want.length)
  let max = 0
  for (let i = 0; i < want.length; i++) {
    max = Math.max(max, Math.abs((got[i] as number) - (want[i] as number)))
  }
  return max
}

/**
 * Issue 5: numerical parity with torch for every supported family and both weight files, on a
 * padded batch with mixed token types.
 */
describe('weights → ONNX encoders: parity with torch', async () => {
  const skip = await torchSkipReason()
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
    if (skip === undefined) await makeEncoders(dir.path)
  })
  after(() => dir.remove())

  // Each family, and the three sequence-classification heads.
  for (const name of [...CONVERTIBLE_FAMILIES, 'bert-cls', 'roberta-cls', 'distilbert-cls']) {
    for (const [source, file] of [
      ['safetensors', 'model.safetensors'],
      ['pytorch', 'pytorch_model.bin'],
    ] as const) {
      it(`${name} from ${file}: every output within ${TOLERANCE} of torch`, { skip }, async () => {
        const root = join(dir.path, name)
        const config = JSON.parse(await readFile(join(root, 'config.json'), 'utf8'))
        const family = config.model_type
        const reference = JSON.parse(
          await readFile(join(root, 'reference.json'), 'utf8'),
        ) as EncoderReference
        const reader = await openWeights(root, { source: source, files: [file] })
        let graph: Buffer
        try {
          graph = await encoderToOnnx(encoderConfig(config), reader)
        } finally {
          reader.close()
        }
        const session = await ort.InferenceSession.create(graph, { intraOpNumThreads: 1 })
        try {
          assert.deepEqual([...session.inputNames], encoderInputs(family))
          const batch = reference.input_ids.length
          const length = reference.input_ids[0]?.length ?? 0
          const int64 = (rows: number[][]) =>
            new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [batch, length])
          const feeds: Record<string, ort.Tensor> = {
            input_ids: int64(reference.input_ids),
            attention_mask: int64(reference.attention_mask),
          }
          if (family === 'bert') feeds.token_type_ids = int64(reference.token_type_ids)
          const out = await session.run(feeds)
          const hidden = out.last_hidden_state
          assert.ok(hidden !== undefined)
          assert.deepEqual(hidden.dims, [batch, length, config.hidden_size ?? config.dim])
          const error = maxAbsError(
            hidden.data as Float32Array,
            reference.last_hidden_state.flat(2),
          )
          assert.ok(error <= TOLERANCE, `max abs error ${error}`)
          if (reference.pooler_output !== undefined) {
            const pooled = out.pooler_output
            assert.ok(pooled !== undefined, 'pooler_output')
            const pooledError = maxAbsError(
              pooled.data as Float32Array,
              reference.pooler_output.flat(),
            )
            assert.ok(pooledError <= TOLERANCE, `pooler max abs error ${pooledError}`)
          } else {
            assert.equal(out.pooler_output, undefined)
          }
          if (reference.logits !== undefined) {
            const logits = out.logits
            assert.ok(logits !== undefined, 'logits')
            assert.deepEqual(logits.dims, [batch, Object.keys(config.id2label).length])
            const logitsError = maxAbsError(logits.data as Float32Array, reference.logits.flat())
            assert.ok(logitsError <= TOLERANCE, `logits max abs error ${logitsError}`)
          } else {
            assert.equal(out.logits, undefined)
          }
        } finally {
          await session.release()
        }
      })
    }
  }

  it('names what it cannot convert', () => {
    const refusals: Array<Record<string, unknown>> = [
      { model_type: 'gpt2' },
      {
        model_type: 'bert',
        hidden_size: 32,
        num_attention_heads: 4,
        num_hidden_layers: 1,
        hidden_act: 'swish',
      },
      { model_type: 'bert', hidden_size: 30, num_attention_heads: 4, num_hidden_layers: 1 },
      { model_type: 'bert', num_attention_heads: 4, num_hidden_layers: 1 },
      {
        model_type: 'bert',
        hidden_size: 32,
        num_attention_heads: 4,
        num_hidden_layers: 1,
        position_embedding_type: 'relative_key',
      },
    ]
    for (const config of refusals) {
      assert.throws(
        () => encoderConfig(config),
        (err) => isBerthError(err, 'model_not_convertible'),
        JSON.stringify(config),
      )
    }
  })
})
