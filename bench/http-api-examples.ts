/**
 * Runs every curl example of docs/http-api.md, in order, against a real server on 127.0.0.1
 * (fresh data dir, generated bootstrap key, the repository's examples/), and prints each answer
 * next to what the page shows. With `--write`, every documented answer that drifted is replaced
 * by the real one (then `npm run format` lays it out; cut long arrays short again by hand,
 * ending them in "…").
 *
 *   npm run docs:http-api [-- --write]
 *
 * test/e2e/http-api-examples.test.ts runs the same examples and fails on any drift.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  docExamples,
  jsonDifferences,
  prettyJson,
  startDocServer,
  textDifferences,
} from '../test/helpers/doc-examples.js'
import { REPO_ROOT } from '../test/helpers/repo.js'

const PAGE = join(REPO_ROOT, 'docs/http-api.md')
const write = process.argv.includes('--write')

const markdown = await readFile(PAGE, 'utf8')
const workDir = await mkdtemp(join(tmpdir(), 'berth-http-api-'))
const server = await startDocServer(workDir)
const replacements: { start: number; end: number; text: string }[] = []
let drifted = 0
try {
  for (const example of docExamples(markdown)) {
    const out = await server.run(example.command).catch((err: { stdout?: string }) => {
      console.error(`line ${example.line}: the command failed: ${String(err)}`)
      return err.stdout ?? ''
    })
    let differences: string[]
    let text: string
    if (example.kind === 'json') {
      let actual: unknown
      try {
        actual = JSON.parse(out)
      } catch {
        actual = out
      }
      server.carry(actual)
      text = `${prettyJson(actual)}\n`
      let documented: unknown
      try {
        documented = JSON.parse(example.expected)
      } catch {
        documented = undefined
      }
      differences = jsonDifferences(documented, actual)
    } else {
      text = out.endsWith('\n') ? out : `${out}\n`
      differences = textDifferences(example.expected, out)
    }
    console.log(`--- line ${example.line}\n${example.command}${text}`)
    if (differences.length > 0) {
      drifted++
      console.log(`DRIFT at line ${example.line}:\n  ${differences.join('\n  ')}\n`)
      replacements.push({ start: example.start, end: example.end, text })
    }
  }
} finally {
  await server.close()
  await rm(workDir, { recursive: true, force: true })
}
if (write && replacements.length > 0) {
  let updated = markdown
  for (const r of replacements.reverse()) {
    updated = updated.slice(0, r.start) + r.text + updated.slice(r.end)
  }
  await writeFile(PAGE, updated)
  console.log(`rewrote ${replacements.length} answers in docs/http-api.md`)
}
console.log(drifted === 0 ? 'every example answers as documented' : `${drifted} examples drifted`)
