import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BERTH_VERSION } from '../../src/version.js'
import {
  cycles,
  folderEdges,
  type ImportEdge,
  importGraph,
  importsOf,
  upwardEdges,
} from '../helpers/import-graph.js'
import { readRepoFile, sourceFiles } from '../helpers/repo.js'

/**
 * The layers of `src/`, lowest first: a folder imports only its own files and folders of lower
 * layers. docs/architecture.md shows the same list.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['errors'],
  ['tensors'],
  ['domain'],
  ['config'],
  ['observability'],
  ['archives'],
  ['formats'],
  ['conversion'],
  ['runtime'],
  ['metadata', 'artifacts', 'scheduler'],
  ['inference'],
  ['deployments'],
  ['accounts', 'namespaces'],
  ['registry'],
  ['http', 'cli'],
  ['(root)'],
]

describe('layers', () => {
  it('imports only downward, and every folder has a layer', async () => {
    const edges = await importGraph(await sourceFiles())
    assert.deepEqual(upwardEdges(edges, LAYERS), [])
  })

  it('has no import cycle between files or between folders', async () => {
    const edges = await importGraph(await sourceFiles())
    assert.deepEqual(cycles(edges), [])
    assert.deepEqual(cycles(folderEdges(edges)), [])
  })

  it('is the order docs/architecture.md shows', async () => {
    const doc = await readRepoFile('docs/architecture.md')
    const block = /<!-- layers -->\n```\n([\s\S]*?)```/.exec(doc)?.[1] ?? ''
    const documented = block
      .trim()
      .split('\n')
      .map((line) =>
        line
          .replace(/\s+#.*$/, '')
          .trim()
          .split(/\s+/),
      )
      .reverse()
    assert.deepEqual(documented, LAYERS)
  })

  it('catches an upward import, a peer import, a folder without a layer and cycles', () => {
    const layers = [['low'], ['mid', 'peer'], ['top']]
    const edge = (from: string, to: string): ImportEdge => ({
      from: `src/${from}.ts`,
      to: `src/${to}.ts`,
    })
    assert.deepEqual(upwardEdges([edge('top/a', 'mid/b'), edge('mid/b', 'low/c')], layers), [])
    assert.equal(upwardEdges([edge('low/c', 'top/a')], layers).length, 1)
    assert.equal(upwardEdges([edge('mid/b', 'peer/d')], layers).length, 1)
    assert.equal(upwardEdges([edge('top/a', 'nowhere/e')], layers).length, 1)
    const fileCycle = [edge('mid/a', 'mid/b'), edge('mid/b', 'mid/c'), edge('mid/c', 'mid/a')]
    assert.deepEqual(cycles(fileCycle), [['src/mid/a.ts', 'src/mid/b.ts', 'src/mid/c.ts']])
    assert.deepEqual(cycles([edge('mid/a', 'mid/a')]), [['src/mid/a.ts']])
    assert.deepEqual(cycles([edge('mid/a', 'mid/b'), edge('mid/a', 'mid/c')]), [])
    // No file cycle, but the folders import each other.
    const folderCycle = [edge('mid/a', 'top/b'), edge('top/c', 'mid/d')]
    assert.deepEqual(cycles(folderCycle), [])
    assert.deepEqual(cycles(folderEdges(folderCycle)), [['mid', 'top']])
  })
})

it('reads process.env only in the entry points: src/main.ts, and the runner program', async () => {
  // The runner's listen address and token come from its environment (docs/decisions/0008).
  const entries = new Set(['src/main.ts', 'src/runtime/worker-main.ts'])
  for (const file of await sourceFiles()) {
    if (entries.has(file)) continue
    assert.ok(!(await readRepoFile(file)).includes('process.env'), file)
  }
})

it('keeps domain/ pure: it imports only errors/, tensors/ and node built-ins', async () => {
  for (const file of (await sourceFiles()).filter((f) => f.startsWith('src/domain/'))) {
    for (const target of await importsOf(file)) {
      assert.ok(
        target.startsWith('node:') ||
          target.startsWith('src/domain/') ||
          target.startsWith('src/errors/') ||
          target.startsWith('src/tensors/'),
        `${file} imports ${target}`,
      )
    }
  }
})

it('lets only factories and the composition root pick adapters', async () => {
  const adapter = /^src\/metadata\/(sqlite|memory|kysely|postgres)\//
  for (const file of await sourceFiles()) {
    if (adapter.test(file) || /\/create-[a-z-]+\.ts$/.test(file)) continue
    for (const target of await importsOf(file)) {
      assert.ok(!adapter.test(target), `${file} imports adapter ${target}`)
    }
  }
})

it('keeps drivers out of everything but their adapters', async () => {
  const homes: ReadonlyArray<readonly [string, RegExp]> = [
    ['better-sqlite3', /^src\/metadata\/sqlite\//],
    ['kysely', /^src\/metadata\/(sqlite|kysely|postgres|migrations)\//],
    ['pg', /^src\/metadata\/postgres\//],
    ['node:child_process', /^src\/scheduler\/local\//],
    ['onnxruntime-node', /^src\/runtime\/onnx\//],
  ]
  for (const file of await sourceFiles()) {
    for (const target of await importsOf(file)) {
      for (const [driver, home] of homes) {
        if (target === driver) assert.ok(home.test(file), `${file} imports ${target}`)
      }
    }
  }
})

it('keeps http/ free of stores and file access', async () => {
  for (const file of (await sourceFiles()).filter((f) => f.startsWith('src/http/'))) {
    for (const target of await importsOf(file)) {
      assert.ok(!target.startsWith('src/metadata/'), `${file} imports ${target}`)
      assert.ok(!['node:fs', 'node:fs/promises'].includes(target), `${file} imports ${target}`)
    }
  }
})

it('has no barrel index files', async () => {
  assert.deepEqual(
    (await sourceFiles()).filter((f) => f.endsWith('/index.ts')),
    [],
  )
})

it('keeps src/version.ts equal to package.json', async () => {
  const pkg = JSON.parse(await readRepoFile('package.json'))
  assert.equal(BERTH_VERSION, pkg.version)
})
