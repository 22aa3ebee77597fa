import assert from 'node:assert/strict'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { safetensorsBytes } from '../fixtures/safetensors.js'
import { type EncoderReference, makeEncoders, torchSkipReason } from '../fixtures/torch-fixtures.js'
import { tempDir } from '../helpers/temp-dir.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

/** Encoder weights uploaded with their config.json are converted once and served over OIP. */
describe('converted encoders, end to end', async () => {
  const skip = await torchSkipReason()
  let t: TestApp
  let ns: string
  let fixtures: Awaited<ReturnType<typeof tempDir>>

  const upload = async (name: string, format: string, files: Record<string, Buffer | string>) => {
    return uploadAndWait(t, ns, { name, model_format: format, memory_gb: '1' }, files)
  }
  const fixture = (family: string, file: string) => readFile(join(fixtures.path, family, file))
  const reference = async (family: string) =>
    JSON.parse((await fixture(family, 'reference.json')).toString()) as EncoderReference
  const infer = (modelId: string, body: unknown) =>
    t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/${modelId}/infer`,
      key: BOOTSTRAP_KEY,
      body,
    })
  const tensorsOf = (ref: EncoderReference, names: readonly string[]) =>
    names.map((name) => {
      const rows = ref[name as 'input_ids']
      return { name, datatype: 'INT64', shape: [rows.length, rows[0]?.length ?? 0], data: rows }
    })
  const maxError = (got: number[], want: number[]) =>
    want.reduce((max, w, i) => Math.max(max, Math.abs((got[i] as number) - w)), 0)

  before(async () => {
    t = await startTestApp()
    ns = await createNamespace(t, 'encoders')
    fixtures = await tempDir()
    if (skip === undefined) await makeEncoders(fixtures.path)
  })
  after(async () => {
    await t.close()
    await fixtures.remove()
  })

  it('converts BERT safetensors at deploy, serves it like torch, and keeps the graph', {
    skip,
  }, async () => {
    const answer = await upload('tiny-bert', 'safetensors', {
      'config.json': await fixture('bert', 'config.json'),
      'model.safetensors': await fixture('bert', 'model.safetensors'),
    })
    assert.equal(answer.deployment_status, 'deployed')

    const meta = await t.request({
      method: 'GET',
      url: '/v2/models/tiny-bert',
      key: BOOTSTRAP_KEY,
      headers: { 'x-namespace': 'encoders' },
    })
    assert.deepEqual(meta.json().inputs, [
      { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
      { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
      { name: 'token_type_ids', datatype: 'INT64', shape: [-1, -1] },
    ])
    assert.deepEqual(meta.json().outputs, [
      { name: 'last_hidden_state', datatype: 'FP32', shape: [-1, -1, 32] },
      { name: 'pooler_output', datatype: 'FP32', shape: [-1, 32] },
    ])

    const ref = await reference('bert')
    const res = await infer('tiny-bert_1_0_0', {
      inputs: tensorsOf(ref, ['input_ids', 'attention_mask', 'token_type_ids']),
    })
    assert.equal(res.statusCode, 200, res.body)
    const [hidden, pooled] = res.json().outputs
    assert.ok(maxError(hidden.data, ref.last_hidden_state.flat(2)) <= 1e-4)
    assert.ok(maxError(pooled.data, ref.pooler_output?.flat() ?? []) <= 1e-4)

    const [installed] = await readdir(join(t.dataDir, 'models', ns))
    const graph = join(t.dataDir, 'models', ns, installed as string, '.berth', 'encoder.onnx')
    // The converted graph is kept with the model; a redeploy loads it instead of converting. A
    // runner in a container reads the models read-only: nothing is written beside the model,
    // and it converts again.
    const local = t.config.scheduler.driver === 'local'
    if (!local) await assert.rejects(stat(graph), { code: 'ENOENT' })
    const before = local ? (await stat(graph)).mtimeMs : undefined
    const redeploy = await t.request({
      method: 'POST',
      url: `/v1/namespaces/${ns}/models/tiny-bert_1_0_0/deploy?reload=true&wait=true`,
      key: BOOTSTRAP_KEY,
    })
    assert.equal(redeploy.json().deployment_status, 'deployed')
    if (local) assert.equal((await stat(graph)).mtimeMs, before)
    else await assert.rejects(stat(graph), { code: 'ENOENT' })
  })

  it('converts a DistilBERT HuggingFace directory from pytorch_model.bin', { skip }, async () => {
    const answer = await upload('tiny-distilbert', 'huggingface', {
      'distil/config.json': await fixture('distilbert', 'config.json'),
      'distil/pytorch_model.bin': await fixture('distilbert', 'pytorch_model.bin'),
    })
    assert.equal(answer.deployment_status, 'deployed')
    const ref = await reference('distilbert')
    const res = await infer('tiny-distilbert_1_0_0', {
      inputs: tensorsOf(ref, ['input_ids', 'attention_mask']),
    })
    assert.equal(res.statusCode, 200, res.body)
    assert.deepEqual(
      res.json().outputs.map((o: { name: string }) => o.name),
      ['last_hidden_state'],
    )
    assert.ok(maxError(res.json().outputs[0].data, ref.last_hidden_state.flat(2)) <= 1e-4)
  })

  it('stores an architecture it does not convert as weights, and says why', async () => {
    const answer = await upload('tiny-gpt', 'safetensors', {
      'config.json': JSON.stringify({ model_type: 'gpt2' }),
      'model.safetensors': safetensorsBytes({
        'wte.weight': { dtype: 'F32', shape: [2], data: Buffer.alloc(8) },
      }),
    })
    assert.equal(answer.deployment_status, 'deployed')
    const res = await infer('tiny-gpt_1_0_0', {
      inputs: [{ name: 'input_ids', shape: [1, 1], datatype: 'INT64', data: [1] }],
    })
    assert.equal(res.statusCode, 400)
    assert.equal(res.json().error.code, 'model_not_servable')
    assert.match(res.json().error.message, /bert, roberta, xlm-roberta, distilbert/)
  })
})
