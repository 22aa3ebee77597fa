import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { it } from 'node:test'
import { REPO_ROOT } from '../helpers/repo.js'

// Documents that guided berth's design but are not part of the repository: code, comments and
// docs that point at them point at nothing for a reader of the repository. The patterns are built
// from pieces so that this file does not match itself.
const OUTSIDE_DOCS: ReadonlyArray<readonly [RegExp, string]> = [
  [new RegExp(`\\b${'DESIGN'}(\\.md\\b|\\s*§|'s\\b)`), `${'DESIGN'}.md §5`],
  [new RegExp(`\\b${'STYLE'}\\.md\\b`), `see ${'STYLE'}.md`],
  [new RegExp(`\\b${'mixpeek-api'}\\.md\\b`), `${'mixpeek-api'}.md §2`],
  [new RegExp(`\\b${'mixpeek-openapi'}-subset\\b`), `${'mixpeek-openapi'}-subset.json`],
  [new RegExp(`(?<![\\w/.-])${'reference'}/`), `\`${'reference'}/notes.md\``],
  [new RegExp(`\\.\\./${'shared'}\\b`), `../${'shared'}/notes.md`],
  [new RegExp(`\\b${'runtime'}-feasibility\\b`), `${'runtime'}-feasibility.md`],
  [new RegExp(`\\b${'seed-upload'}-a-custom-model\\b`), `${'seed-upload'}-a-custom-model.md`],
  [new RegExp(`\\b${'architecture-review'}\\.md\\b`), `${'architecture-review'}.md`],
]

// Not the repository's own files (.gitignore), and the decision records, which may cite the
// history of a decision.
const SKIPPED = new Set(['.git', 'node_modules', 'dist', 'build', 'data', 'docs/decisions'])
const BINARY = /\.(onnx|bin|pt|pth|safetensors|gz|tgz|png|jpg)$/

async function repositoryFiles(dir = ''): Promise<string[]> {
  const files: string[] = []
  for (const entry of await readdir(join(REPO_ROOT, dir), { withFileTypes: true })) {
    const path = dir === '' ? entry.name : `${dir}/${entry.name}`
    if (SKIPPED.has(path)) continue
    if (entry.isDirectory()) files.push(...(await repositoryFiles(path)))
    else if (entry.isFile() && !BINARY.test(entry.name)) files.push(path)
  }
  return files
}

it('the patterns catch what they are meant to catch, and not in-repo paths', () => {
  for (const [pattern, example] of OUTSIDE_DOCS) assert.ok(pattern.test(example), example)
  for (const fine of [
    'docs/decisions/0001-runner-processes.md',
    'BERTH_S3_FORCE_PATH_STYLE',
    'referenceMlp(X)',
    'https://example.com/api/reference/',
    'sqlite:///shared/berth.db',
    'DESIGNATED',
  ]) {
    assert.ok(!OUTSIDE_DOCS.some(([pattern]) => pattern.test(fine)), fine)
  }
})

it('refers to no document outside the repository', async () => {
  const files = await repositoryFiles()
  assert.ok(files.includes('README.md') && files.some((f) => f.startsWith('src/')))
  const offences: string[] = []
  for (const file of files) {
    const lines = (await readFile(join(REPO_ROOT, file), 'utf8')).split('\n')
    lines.forEach((line, index) => {
      for (const [pattern] of OUTSIDE_DOCS) {
        const found = pattern.exec(line)
        if (found !== null) offences.push(`${file}:${index + 1}: ${found[0]}`)
      }
    })
  }
  assert.deepEqual(offences, [])
})
