import { execFile } from 'node:child_process'
import { mkdir, readFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { REPO_ROOT } from './repo.js'
import { startTestApp, type TestApp } from './test-app.js'

const run = promisify(execFile)

/** The base URL the documented commands use; the real server's replaces it. */
export const DOC_BASE = 'http://127.0.0.1:8080'

/** One documented command: a ```sh block, and the ```json or ```text block right after it. */
export interface DocExample {
  /** 1-based line of the ```sh fence, for messages. */
  readonly line: number
  readonly command: string
  readonly kind: 'json' | 'text'
  readonly expected: string
  /** Offsets of `expected` in the document, for rewriting it. */
  readonly start: number
  readonly end: number
}

const EXAMPLE = /```sh\n([\s\S]*?)```\n\s*```(json|text)\n([\s\S]*?)```/g

/** Every ```sh block immediately followed (blank lines aside) by a ```json or ```text block. */
export function docExamples(markdown: string): DocExample[] {
  const found: DocExample[] = []
  for (const m of markdown.matchAll(EXAMPLE)) {
    const [whole, command, kind, expected] = m as unknown as [string, string, string, string]
    const start = m.index + whole.length - 3 - expected.length
    found.push({
      line: markdown.slice(0, m.index).split('\n').length,
      command,
      kind: kind as 'json' | 'text',
      expected,
      start,
      end: start + expected.length,
    })
  }
  return found
}

/**
 * Keys whose values differ on every run by nature (ids, times, latencies, pids, memory, the
 * machine's size, hashes of archives that hold file times, signed URLs): compared by type and
 * shape only. A dotted entry names the key under its parent only.
 */
export const VOLATILE_KEYS: readonly string[] = [
  'namespace_id',
  'organization_id',
  'created_at',
  'updated_at',
  'since',
  'deployed_at',
  'upload_id',
  'presigned_url',
  's3_key',
  'expires_at',
  'model_archive_url',
  's3_archive_url',
  'model_hash',
  'file_size_bytes',
  'latency_ms',
  // Triton's statistics: nanoseconds spent, and when the last request ended.
  'ns',
  'last_inference',
  'processes',
  'resident_bytes',
  'charged_memory_bytes',
  'last_used_at',
  'first_request_at',
  'last_request_at',
  'window_start',
  'node.cpus',
  'node.memory_bytes',
  'node.gpus',
  'reserved.memory_bytes',
]

/** Parts of strings that differ on every run (generated ids), masked before comparing. */
export const VOLATILE_PATTERNS: readonly RegExp[] = [
  /ns_[0-9a-f]{20}/g,
  /upl_[0-9a-z]+/g,
  /org_[0-9a-z]+/g,
  /\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\b/g,
  // The size of an archive packed by the reader's tar (its headers name the owner).
  /\b\d+ bytes received\b/g,
]

/** The marker that ends an array shown cut short: the real one starts with what is shown. */
export const TRIMMED = '…'

function mask(text: string): string {
  return VOLATILE_PATTERNS.reduce((s, p) => s.replace(p, '<volatile>'), text)
}

function typeOf(value: unknown): string {
  return value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
}

function isVolatile(path: readonly string[]): boolean {
  const key = path.at(-1)
  const parent = path.at(-2)
  return VOLATILE_KEYS.some((v) => v === key || (parent !== undefined && v === `${parent}.${key}`))
}

/**
 * Where `actual` differs from `documented`, as `path: why` lines (none when they agree).
 * Numbers agree within a millionth of their size: a model's float results may differ in their
 * last digits between CPUs.
 */
export function jsonDifferences(
  documented: unknown,
  actual: unknown,
  path: readonly string[] = [],
): string[] {
  const at = path.join('.') || '(root)'
  if (typeOf(documented) !== typeOf(actual)) {
    return [`${at}: documented ${JSON.stringify(documented)}, got ${JSON.stringify(actual)}`]
  }
  if (isVolatile(path)) {
    // Same shape: for an object, the same keys each of the same type.
    if (typeOf(documented) !== 'object') return []
    const d = documented as Record<string, unknown>
    const a = actual as Record<string, unknown>
    const keys = [...new Set([...Object.keys(d), ...Object.keys(a)])]
    return keys
      .filter((k) => typeOf(d[k]) !== typeOf(a[k]))
      .map((k) => `${at}.${k}: documented a ${typeOf(d[k])}, got a ${typeOf(a[k])}`)
  }
  if (Array.isArray(documented) && Array.isArray(actual)) {
    const trimmed = documented.at(-1) === TRIMMED
    const shown = trimmed ? documented.slice(0, -1) : documented
    if (trimmed ? actual.length < shown.length : actual.length !== shown.length) {
      return [
        `${at}: documented ${shown.length} items${trimmed ? ' or more' : ''}, got ${actual.length}`,
      ]
    }
    return shown.flatMap((d, i) => jsonDifferences(d, actual[i], [...path, String(i)]))
  }
  if (typeOf(documented) === 'object') {
    const d = documented as Record<string, unknown>
    const a = actual as Record<string, unknown>
    const keys = [...new Set([...Object.keys(d), ...Object.keys(a)])]
    return keys.flatMap((k) =>
      k in d && k in a
        ? jsonDifferences(d[k], a[k], [...path, k])
        : [`${at}.${k}: ${k in d ? 'documented but not answered' : 'answered but not documented'}`],
    )
  }
  if (typeof documented === 'number' && typeof actual === 'number') {
    const close = Math.abs(documented - actual) <= 1e-6 * Math.max(1, Math.abs(documented))
    return close ? [] : [`${at}: documented ${documented}, got ${actual}`]
  }
  if (typeof documented === 'string' && typeof actual === 'string') {
    return mask(documented) === mask(actual)
      ? []
      : [`${at}: documented ${JSON.stringify(documented)}, got ${JSON.stringify(actual)}`]
  }
  return documented === actual ? [] : [`${at}: documented ${documented}, got ${actual}`]
}

/** Where a text answer differs from the documented one, line by line, generated ids masked. */
export function textDifferences(documented: string, actual: string): string[] {
  const d = mask(documented).trimEnd().split('\n')
  const a = mask(actual).trimEnd().split('\n')
  const out: string[] = []
  for (let i = 0; i < Math.max(d.length, a.length); i++) {
    if (d[i]?.trimEnd() !== a[i]?.trimEnd()) {
      out.push(`line ${i + 1}: documented ${JSON.stringify(d[i])}, got ${JSON.stringify(a[i])}`)
    }
  }
  return out
}

/**
 * Values the documented commands take from earlier answers: a top-level key of an answer
 * becomes the variable for the commands after it (the page says so where it uses one).
 */
export const CARRIED: Readonly<Record<string, string>> = {
  upload_id: 'UPLOAD_ID',
  presigned_url: 'PRESIGNED_URL',
}

/** A real server on 127.0.0.1 and the working directory the documented commands run in. */
export interface DocServer {
  readonly t: TestApp
  readonly base: string
  readonly workDir: string
  /** Runs one documented command; resolves its stdout with the real base URL put back. */
  run(command: string): Promise<string>
  /** Remembers the carried values of a JSON answer. */
  carry(answer: unknown): void
  close(): Promise<void>
}

/**
 * Starts the real app with a generated bootstrap key in `WORK/data` (as `berth serve` run from
 * WORK with its defaults would), WORK holding a link to the repository's examples/.
 */
export async function startDocServer(workDir: string): Promise<DocServer> {
  await mkdir(join(workDir, 'data'), { recursive: true })
  await symlink(join(REPO_ROOT, 'examples'), join(workDir, 'examples'))
  const t = await startTestApp({
    BERTH_DATA_DIR: join(workDir, 'data'),
    BERTH_BOOTSTRAP_API_KEY: undefined,
  })
  await t.app.server.listen({ host: '127.0.0.1', port: 0 })
  const address = t.app.server.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  const base = `http://127.0.0.1:${address.port}`
  const key = (await readFile(join(workDir, 'data', 'bootstrap-api-key'), 'utf8')).trim()
  const vars: Record<string, string> = { KEY: key }
  return {
    t,
    base,
    workDir,
    run: async (command) => {
      const { stdout } = await run(
        'bash',
        ['-euo', 'pipefail', '-c', command.replaceAll(DOC_BASE, base)],
        { cwd: workDir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...vars } },
      )
      return stdout.replaceAll(base, DOC_BASE)
    },
    carry: (answer) => {
      if (typeof answer !== 'object' || answer === null) return
      for (const [key, name] of Object.entries(CARRIED)) {
        const value = (answer as Record<string, unknown>)[key]
        if (typeof value === 'string') vars[name] = value.replaceAll(DOC_BASE, base)
      }
    },
    close: () => t.close(),
  }
}

function oneLine(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(oneLine).join(', ')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
    if (entries.length === 0) return '{}'
    return `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${oneLine(v)}`).join(', ')} }`
  }
  return JSON.stringify(value) ?? 'null'
}

/**
 * JSON as the page shows it: two-space indents, a value on one line where it fits in 100
 * columns (`lead`: the columns before it on its line).
 */
export function prettyJson(value: unknown, indent = 0, lead = indent): string {
  const flat = oneLine(value)
  if (typeof value !== 'object' || value === null || lead + flat.length <= 100) return flat
  const pad = ' '.repeat(indent + 2)
  const items = Array.isArray(value)
    ? value.map((v) => pad + prettyJson(v, indent + 2))
    : Object.entries(value).map(([k, v]) => {
        const key = `${pad}${JSON.stringify(k)}: `
        return key + prettyJson(v, indent + 2, key.length)
      })
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}']
  return `${open}\n${items.join(',\n')}\n${' '.repeat(indent)}${close}`
}
