import { dirname, join, normalize } from 'node:path'
import { readRepoFile } from './repo.js'

/** `from` imports `to` (repo-relative `.ts` paths). */
export interface ImportEdge {
  readonly from: string
  readonly to: string
}

/** Repo-relative `.ts` targets of the relative imports (static, dynamic, type-only) of a file. */
export async function importsOf(file: string): Promise<string[]> {
  const source = await readRepoFile(file)
  const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map(
    (m) => m[1] ?? '',
  )
  return specifiers.map((s) =>
    s.startsWith('.') ? normalize(join(dirname(file), s)).replace(/\.js$/, '.ts') : s,
  )
}

/** The relative imports among `files`. */
export async function importGraph(files: readonly string[]): Promise<ImportEdge[]> {
  const edges: ImportEdge[] = []
  for (const from of files) {
    for (const to of await importsOf(from)) {
      if (to.startsWith('src/')) edges.push({ from, to })
    }
  }
  return edges
}

/** The top-level folder of a source file under `src/`; `(root)` for `src/*.ts`. */
export function folderOf(file: string): string {
  const parts = file.split('/')
  return parts.length > 2 ? (parts[1] as string) : '(root)'
}

/**
 * Edges that break the layer order: a folder may import its own files and those of folders in
 * lower layers, nothing else (peers in one layer are independent of each other).
 */
export function upwardEdges(
  edges: readonly ImportEdge[],
  layers: readonly (readonly string[])[],
): string[] {
  const rank = new Map(layers.flatMap((folders, i) => folders.map((f) => [f, i] as const)))
  const problems: string[] = []
  for (const { from, to } of edges) {
    const [a, b] = [folderOf(from), folderOf(to)]
    if (a === b) continue
    const [ra, rb] = [rank.get(a), rank.get(b)]
    if (ra === undefined) problems.push(`${from}: folder ${a} has no layer`)
    else if (rb === undefined) problems.push(`${to}: folder ${b} has no layer`)
    else if (rb >= ra) problems.push(`${from} → ${to} (${a} may not import ${b})`)
  }
  return problems
}

/** Strongly connected components with more than one member (or a self-import): the cycles. */
export function cycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>()
  for (const { from, to } of edges) {
    next.set(from, [...(next.get(from) ?? []), to])
    if (!next.has(to)) next.set(to, [])
  }
  // Tarjan's algorithm, iterative so a deep graph cannot overflow the stack.
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const onStack = new Set<string>()
  const stack: string[] = []
  const found: string[][] = []
  let counter = 0
  for (const root of next.keys()) {
    if (index.has(root)) continue
    const work: [string, number][] = [[root, 0]]
    while (work.length > 0) {
      const frame = work[work.length - 1] as [string, number]
      const [node, i] = frame
      if (i === 0) {
        index.set(node, counter)
        low.set(node, counter)
        counter += 1
        stack.push(node)
        onStack.add(node)
      }
      const targets = next.get(node) ?? []
      if (i < targets.length) {
        frame[1] = i + 1
        const target = targets[i] as string
        if (!index.has(target)) work.push([target, 0])
        else if (onStack.has(target)) {
          low.set(node, Math.min(low.get(node) as number, index.get(target) as number))
        }
        continue
      }
      work.pop()
      const parent = work[work.length - 1]
      if (parent !== undefined) {
        low.set(parent[0], Math.min(low.get(parent[0]) as number, low.get(node) as number))
      }
      if (low.get(node) === index.get(node)) {
        const component: string[] = []
        let member: string
        do {
          member = stack.pop() as string
          onStack.delete(member)
          component.push(member)
        } while (member !== node)
        const selfImport = targets.includes(node)
        if (component.length > 1 || selfImport) found.push(component.sort())
      }
    }
  }
  return found
}

/** The folder-level graph of file edges (edges within one folder dropped). */
export function folderEdges(edges: readonly ImportEdge[]): ImportEdge[] {
  const seen = new Set<string>()
  const out: ImportEdge[] = []
  for (const { from, to } of edges) {
    const [a, b] = [folderOf(from), folderOf(to)]
    if (a === b || seen.has(`${a} ${b}`)) continue
    seen.add(`${a} ${b}`)
    out.push({ from: a, to: b })
  }
  return out
}
