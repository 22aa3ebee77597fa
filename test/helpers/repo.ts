import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (tests run from `build/test/…`). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

export function readRepoFile(path: string): Promise<string> {
  return readFile(join(REPO_ROOT, path), 'utf8')
}

/** Repo-relative paths of the TypeScript sources under `dir`, tests excluded. */
export async function sourceFiles(dir = 'src'): Promise<string[]> {
  const entries = await readdir(join(REPO_ROOT, dir), { recursive: true, withFileTypes: true })
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relative(REPO_ROOT, join(e.parentPath, e.name)))
    .sort()
}

/** Rows of the first Markdown table whose header starts with `firstHeader`, as cell arrays. */
export function markdownTable(markdown: string, firstHeader: string): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => new RegExp(`^\\|\\s*${firstHeader}\\s*\\|`).test(l))
  if (start < 0) throw new Error(`no table headed "${firstHeader}"`)
  const rows: string[][] = []
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    )
  }
  return rows
}
