/**
 * A driver's error (a database, a network client, the file system) in one line for an operator:
 * its message, its code (`ECONNREFUSED`, a SQLSTATE) where the message lacks it, and each
 * `secrets` string (a URL that may hold a password) blotted out. Every error of an
 * `AggregateError` (a host name that resolved to several addresses) is shown.
 */
export function driverReason(err: unknown, secrets: readonly string[] = []): string {
  const inner = err instanceof AggregateError ? err.errors.map((e) => driverReason(e)) : []
  const message = err instanceof Error ? err.message : String(err)
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined
  let line = [message, ...inner].filter((part) => part !== '').join('; ')
  if (typeof code === 'string' && !line.includes(code)) line = `${line} (${code})`
  line = line.replace(/\s*\n\s*/g, ' ').trim()
  for (const secret of secrets) if (secret !== '') line = line.replaceAll(secret, '[redacted]')
  return line
}
