import assert from 'node:assert/strict'
import { it } from 'node:test'
import {
  CONFIG_VARIABLES,
  type VariableName,
  type VariableSpec,
} from '../../src/config/config-variables.js'
import { type Env, loadConfig } from '../../src/config/load-config.js'
import { isBerthError } from '../../src/errors/berth-error.js'
import { markdownTable, readRepoFile } from '../helpers/repo.js'

const HOST = { cpus: 4, memoryBytes: 8 * 1024 ** 3 }
// PostgreSQL and S3, so that the variables read only for them are read too. Nothing connects.
const BASE_ENV: Env = {
  BERTH_DATABASE_URL: 'postgres://berth@db.internal/berth',
  BERTH_STORAGE_URL: 's3://models/berth',
}
const SPECS = Object.entries(CONFIG_VARIABLES) as Array<[VariableName, VariableSpec]>

/** `10737418240` → `10 GiB`: the largest binary unit the size is a whole number of. */
function binarySize(bytes: number): string | undefined {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
    ['KiB', 1024],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`
  }
  return undefined
}

/** The Default cell a variable's row must show. */
function shownDefault(spec: VariableSpec): string {
  const value = spec.default
  if (value === undefined) return 'unset'
  if (typeof value === 'object') return value.shown
  const shown = `\`${String(value)}\``
  const size = spec.kind === 'int' && spec.unit === 'bytes' ? binarySize(spec.default) : undefined
  return size === undefined ? shown : `${shown} (${size})`
}

/** The Accepts cell a variable's row must show. */
function shownAccepts(spec: VariableSpec): string {
  switch (spec.kind) {
    case 'int':
    case 'number':
      return spec.max === Number.MAX_SAFE_INTEGER
        ? `\`${spec.min}\` or more`
        : `\`${spec.min}\`–\`${spec.max}\``
    case 'bool':
      return '`true` or `false`'
    case 'choice':
      return spec.values.map((v) => `\`${v}\``).join(', ')
    case 'text':
      return spec.accepts
  }
}

/** The server table, then the client table, as `[name, default, accepts, meaning]` rows. */
async function documentedTables(): Promise<{ server: string[][]; client: string[][] }> {
  const doc = await readRepoFile('docs/configuration.md')
  const clientAt = doc.indexOf('\n## Client variables')
  assert.ok(clientAt > 0, 'docs/configuration.md has a "Client variables" section')
  const rows = (part: string) =>
    markdownTable(part, 'Variable').map((cells) => [
      (cells[0] ?? '').replaceAll('`', ''),
      ...cells.slice(1),
    ])
  return { server: rows(doc.slice(0, clientAt)), client: rows(doc.slice(clientAt)) }
}

function problemsOf(env: Env): string[] {
  try {
    loadConfig(env, HOST)
    return []
  } catch (err) {
    assert.ok(isBerthError(err, 'config_invalid'))
    return err.details?.problems as string[]
  }
}

it('docs/configuration.md lists exactly the variables of CONFIG_VARIABLES', async () => {
  const { server, client } = await documentedTables()
  const names = (client: boolean) =>
    SPECS.filter(([, spec]) => (spec.client === true) === client)
      .map(([name]) => name)
      .sort()
  assert.deepEqual(server.map(([name]) => name).sort(), names(false))
  assert.deepEqual(client.map(([name]) => name).sort(), names(true))
  assert.ok(server.length >= 30)
})

it("shows each variable's default and bounds as CONFIG_VARIABLES defines them", async () => {
  const { server, client } = await documentedTables()
  for (const [name, shownDefaultCell, acceptsCell, meaning] of [...server, ...client]) {
    const spec = CONFIG_VARIABLES[name as VariableName]
    assert.equal(shownDefaultCell, shownDefault(spec), `${name}: Default`)
    assert.equal(acceptsCell, shownAccepts(spec), `${name}: Accepts`)
    assert.ok((meaning ?? '').length > 0, `${name}: Meaning`)
  }
})

it('the loader reads every variable of CONFIG_VARIABLES and no other BERTH_ variable', () => {
  const read = new Set<string>()
  const recording = (env: Env): Env =>
    new Proxy(env, {
      get(target, name) {
        if (typeof name === 'string') read.add(name)
        return Reflect.get(target, name)
      },
    })
  loadConfig(recording({}), HOST)
  loadConfig(recording(BASE_ENV), HOST)
  assert.deepEqual(
    [...read].filter((name) => name.startsWith('BERTH_')).sort(),
    SPECS.map(([name]) => name).sort(),
  )
})

it('applies the defaults and the bounds of CONFIG_VARIABLES', () => {
  const defaults = loadConfig(BASE_ENV, HOST)
  for (const [name, spec] of SPECS) {
    if (spec.kind === 'text' || (spec.kind === 'number' && typeof spec.default !== 'number')) {
      continue
    }
    // The documented default, set explicitly, changes nothing.
    const explicit = loadConfig({ ...BASE_ENV, [name]: String(spec.default) }, HOST)
    assert.deepEqual(explicit, defaults, `${name}=${String(spec.default)}`)
  }
  for (const [name, spec] of SPECS) {
    if (spec.kind !== 'int' && spec.kind !== 'number') continue
    const step = spec.kind === 'int' ? 1 : spec.min / 2
    for (const inside of [spec.min, spec.max]) {
      assert.deepEqual(problemsOf({ ...BASE_ENV, [name]: String(inside) }), [], `${name}=${inside}`)
    }
    for (const outside of [spec.min - step, spec.max + step]) {
      const problems = problemsOf({ ...BASE_ENV, [name]: String(outside) })
      assert.equal(problems.length, 1, `${name}=${outside}`)
      assert.ok(problems[0]?.startsWith(name), `${name}=${outside}: ${problems[0]}`)
    }
  }
})

it('defines the variables whose names are fixed (deployments rely on them)', () => {
  for (const name of [
    'BERTH_HOST',
    'BERTH_PORT',
    'BERTH_PUBLIC_URL',
    'BERTH_DATA_DIR',
    'BERTH_DATABASE_URL',
    'BERTH_STORAGE_URL',
    'BERTH_SCHEDULER',
    'BERTH_BOOTSTRAP_API_KEY',
    'BERTH_MAX_ARCHIVE_BYTES',
    'BERTH_TORCH_PYTHON',
  ]) {
    assert.ok(Object.hasOwn(CONFIG_VARIABLES, name), name)
  }
})
