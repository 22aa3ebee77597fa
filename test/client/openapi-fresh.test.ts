import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { it } from 'node:test'
import { CLIENT_OPENAPI, clientOpenApi } from '../helpers/client-openapi.js'
import { importsOf } from '../helpers/import-graph.js'
import { readRepoFile, sourceFiles } from '../helpers/repo.js'

it("@berth/client's types come from the server's own OpenAPI document, as it is now", async () => {
  const kept = JSON.parse(await readFile(CLIENT_OPENAPI, 'utf8')) as unknown
  // A route or schema changed without the client: run `npm run openapi:client`.
  assert.deepEqual(kept, await clientOpenApi())
})

it('@berth/client needs nothing of the server: its own small dependencies only', async () => {
  const manifest = JSON.parse(await readRepoFile('packages/client/package.json')) as {
    dependencies: Record<string, string>
  }
  const allowed = ['openapi-fetch', 'tar-stream']
  assert.deepEqual(Object.keys(manifest.dependencies).sort(), allowed)
  const files = await sourceFiles('packages/client/src')
  assert.ok(files.includes('packages/client/src/client.ts'), String(files))
  for (const file of files) {
    for (const target of await importsOf(file)) {
      assert.ok(
        target.startsWith('node:') ||
          target.startsWith('packages/client/src/') ||
          allowed.includes(target),
        `${file} imports ${target}`,
      )
    }
    // A library takes its settings from its caller, never from the environment.
    assert.ok(!(await readRepoFile(file)).includes('process.env'), file)
  }
})
