/**
 * What a command answers: JSON for `--json` (and for scripts), and the same for people: a table,
 * or `key: value` lines.
 */
export interface Rendered {
  readonly json: unknown
  readonly human: string
  /** Printed, and yet a failure (exit 1): a `--wait` that ended failed, or did not settle. */
  readonly failed?: boolean
}

/** Columns padded to their widest cell (the last one is not padded). */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return `${rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n')}\n`
}

/** An object's scalar fields, one `key: value` line each (nested values as JSON). */
export function fieldLines(object: Readonly<Record<string, unknown>>): string {
  const entries = Object.entries(object).filter(([, v]) => v !== undefined)
  const width = Math.max(0, ...entries.map(([k]) => k.length))
  return `${entries
    .map(([k, v]) => {
      const value = typeof v === 'string' ? v : v === null ? '-' : JSON.stringify(v)
      return `${`${k}:`.padEnd(width + 1)} ${value}`
    })
    .join('\n')}\n`
}

const MIB = 1024 ** 2

export function mib(bytes: number): string {
  return `${Math.round(bytes / MIB)} MiB`
}
