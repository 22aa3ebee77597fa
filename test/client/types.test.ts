import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { it } from 'node:test'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

it("@berth/client's published types hold every route: a consumer type-checks, libraries included", async () => {
  // Inside the repository, so that '@berth/client' resolves to the built package (dist/).
  const dir = await mkdtemp(join(ROOT, 'build', 'consumer-'))
  try {
    const file = join(dir, 'consumer.ts')
    await writeFile(
      file,
      `import { BerthClient, type Schemas } from '@berth/client'
const client = new BerthClient({ url: 'http://127.0.0.1:8080', apiKey: 'sk_x' })
export async function names(): Promise<string[]> {
  const { namespaces } = await client.listNamespaces()
  return namespaces.map((n) => n.namespace_name)
}
export async function capacity(): Promise<number | undefined> {
  const { data } = await client.api.GET('/v1/node')
  return data?.node.memory_bytes
}
export type Upload = Schemas['ModelUploadResponse']
// @ts-expect-error: berth has no such route, and the types say so.
void client.api.GET('/v1/no-such-route')
`,
    )
    const program = ts.createProgram([file], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: ['node'],
    })
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    assert.deepEqual(problems, [])
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
