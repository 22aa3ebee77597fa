/**
 * The API key's lookup alone, as every authenticated request makes it: `findCredential` on the
 * embedded SQLite store, which keeps what it found until the database changes, beside the same
 * store on the same file opened to look every credential up (its prepared query run each time,
 * as before it kept them), interleaved in rounds in one process.
 *
 *   npm run bench:credentials -- [lookups per round]     (default: 20000)
 */
import { join } from 'node:path'
import { SqliteMetadataStore } from '../src/metadata/sqlite/sqlite-metadata-store.js'
import { apiKey, organization } from '../test/fixtures/account-records.js'
import { tempDir } from '../test/helpers/temp-dir.js'

const lookups = Number(process.argv[2] ?? 20_000)
const ROUNDS = 5

const dir = await tempDir('berth-bench-credentials-')
const path = join(dir.path, 'berth.db')
const kept = await SqliteMetadataStore.open({ driver: 'sqlite', path })
const everyTime = await SqliteMetadataStore.open(
  { driver: 'sqlite', path },
  { keepCredentials: false },
)
try {
  const org = organization({ tier: 'enterprise' })
  await kept.createOrganization(org)
  const key = apiKey(org.id)
  await kept.createApiKey(key)
  const { hash } = key
  const stores = { 'kept until the database changes': kept, 'looked up every time': everyTime }
  const micros: Record<string, number[]> = Object.fromEntries(
    Object.keys(stores).map((label) => [label, []]),
  )
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, store] of Object.entries(stores)) {
      for (let i = 0; i < 1000; i++) await store.findCredential(hash)
      const t0 = performance.now()
      for (let i = 0; i < lookups; i++) await store.findCredential(hash)
      micros[label]?.push(((performance.now() - t0) * 1000) / lookups)
    }
  }
  console.log(`${lookups} lookups per round, ${ROUNDS} rounds; µs per lookup, each round:\n`)
  console.log('| Credential lookup | µs per lookup (rounds) |')
  console.log('| --- | --- |')
  for (const [label, values] of Object.entries(micros)) {
    console.log(`| ${label} | ${values.map((v) => v.toFixed(1)).join(' / ')} |`)
  }
} finally {
  await kept.close()
  await everyTime.close()
  await dir.remove()
}
