import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { BOOTSTRAP_KEY, startTestApp } from '../helpers/test-app.js'
import { deployTinyMlp } from '../helpers/uploads.js'

/** The environment of a live process, from /proc. */
async function environOf(pid: number): Promise<Record<string, string>> {
  const raw = await readFile(`/proc/${pid}/environ`, 'utf8')
  return Object.fromEntries(
    raw
      .split('\0')
      .filter((entry) => entry !== '')
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
  )
}

describe('runner environment', () => {
  it("runs models without the server's secrets: only the allowed variables reach a runner", async () => {
    const secret = 'do-not-leak-0123456789'
    // In the test process's own environment too, where a runner that inherited it would see it.
    process.env.AWS_SECRET_ACCESS_KEY = secret
    const app = await startTestApp({
      PATH: '/usr/bin:/bin',
      LANG: 'C.UTF-8',
      AWS_SECRET_ACCESS_KEY: secret,
      AWS_ACCESS_KEY_ID: secret,
      BERTH_UPLOAD_SIGNING_KEY: `${secret}-${secret}`,
      BERTH_SPARE_RUNNERS: '0',
    })
    try {
      const { namespaceId: ns, runnerPids: pids } = await deployTinyMlp(app, 'env')
      assert.ok(pids.length >= 1)
      for (const pid of pids) {
        const env = await environOf(pid)
        assert.equal(env.PATH, '/usr/bin:/bin')
        assert.equal(env.LANG, 'C.UTF-8')
        const allowed =
          /^(PATH|HOME|LANG|LC_ALL|TZ|TMPDIR|LD_LIBRARY_PATH|(OPENBLAS|OMP|MKL|KMP|GOTO)_.*)$/
        assert.deepEqual(
          Object.keys(env).filter((name) => !allowed.test(name)),
          [],
        )
        assert.ok(!JSON.stringify(env).includes(secret))
      }
      // The runner still serves with nothing else in its environment.
      const url = `/v1/namespaces/${ns}/models/mlp_1_0_0/infer`
      const body = { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] }
      const infer = await app.request({ method: 'POST', url, key: BOOTSTRAP_KEY, body })
      assert.equal(infer.statusCode, 200)
    } finally {
      await app.close()
      delete process.env.AWS_SECRET_ACCESS_KEY
    }
  })
})
