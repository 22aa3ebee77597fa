import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { it } from 'node:test'
import { CLIENT_OPENAPI, clientOpenApi } from '../helpers/client-openapi.js'
import { readRepoFile } from '../helpers/repo.js'

it("@berth/client's types come from the server's own OpenAPI document, as it is now", async () => {
  const kept = JSON.parse(await readFile(CLIENT_OPENAPI, 'utf8')) as unknown
  // A route or schema changed without the client: run `npm run openapi:client`.
  assert.deepEqual(kept, await clientOpenApi())
})

it('@berth/client needs nothing of the server: its own small dependencies only', async () => {
  const manifest = JSON.parse(await readRepoFile('packages/client/package.json')) as {
    dependencies: Record<string, string>
  }
  assert.deepEqual(Object.keys(manifest.dependencies).sort(), ['openapi-fetch', 'tar-stream'])
  for (const file of ['client.ts', 'archive.ts', 'errors.ts', 'tensors.ts', 'wait.ts']) {
    const source = await readRepoFile(`packages/client/src/${file}`)
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1] ?? '')
    for (const specifier of imports) {
      assert.ok(
        specifier.startsWith('node:') ||
          specifier.startsWith('./') ||
          ['openapi-fetch', 'tar-stream'].includes(specifier),
        `${file} imports ${specifier}`,
      )
    }
  }
})
