import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { mlpModel } from '../fixtures/onnx-models.js'
import { REPO_ROOT, readRepoFile } from '../helpers/repo.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'
import { createNamespace, uploadAndWait } from '../helpers/uploads.js'

/** The README's walk-through uses a committed example model; its outputs must stay true. */
describe("the README's example model", () => {
  let t: TestApp
  let readme: string
  before(async () => {
    t = await startTestApp()
    readme = await readRepoFile('README.md')
  })
  after(() => t.close())

  it('is the fixture MLP, and answers what the README shows', async () => {
    const example = await readFile(join(REPO_ROOT, 'examples/tiny-mlp/model.onnx'))
    assert.deepEqual(example, mlpModel(4, 8, 3, 7))
    const ns = await createNamespace(t, 'production')
    const up = await uploadAndWait(
      t,
      ns,
      { name: 'tiny-mlp', model_format: 'onnx', memory_gb: '0.5' },
      { 'model.onnx': example },
    )
    assert.equal(up.deployment_status, 'deployed')
    const res = await t.request({
      method: 'POST',
      url: `/v1/namespaces/production/models/tiny-mlp_1_0_0/infer`,
      key: BOOTSTRAP_KEY,
      body: {
        inputs: [
          {
            name: 'x',
            shape: [2, 4],
            datatype: 'FP32',
            data: [
              [1, 2, 3, 4],
              [0.5, -1, 0, 2],
            ],
          },
        ],
      },
    })
    const data = res.json().outputs[0].data as number[]
    assert.ok(readme.includes(`"data":[${data.join(',')}]`), 'README shows the batch-of-two answer')
    assert.ok(
      readme.includes(`"data":[${data.slice(0, 3).join(',')}]`),
      'README shows the /v2 answer',
    )
  })
})
