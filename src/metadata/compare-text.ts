/**
 * Orders strings by their UTF-16 code units, as `Array.prototype.sort` does: the same order on
 * SQLite, PostgreSQL (whose collation follows its locale) and in memory.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
