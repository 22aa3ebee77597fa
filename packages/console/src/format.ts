const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–'
  let value = n
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value >= 10 || unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`
}

export function seconds(s: number): string {
  if (!Number.isFinite(s)) return '–'
  if (s < 60) return `${Math.max(0, Math.round(s))} s`
  const m = Math.floor(s / 60)
  return `${m} min ${Math.round(s - m * 60)} s`
}

export function ms(value: number): string {
  return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(0)} ms`
}

/** "3 min ago" for an ISO time. */
export function ago(iso: string): string {
  const s = (Date.now() - Date.parse(iso)) / 1000
  if (s < 5) return 'just now'
  if (s < 90) return `${Math.round(s)} s ago`
  if (s < 5400) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}
