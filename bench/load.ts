/** Closed-loop load for the benchmarks: `concurrency` requests in flight, latency per answer. */

export interface Cell {
  readonly rps: number
  readonly p50: number
  readonly p99: number
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
}

/** Keeps `concurrency` requests in flight for `durationMs`; counts answers and their latency. */
export async function load(
  send: () => Promise<void>,
  concurrency: number,
  durationMs: number,
): Promise<Cell> {
  const times: number[] = []
  const end = performance.now() + durationMs
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now()
        await send()
        times.push(performance.now() - t0)
      }
    }),
  )
  times.sort((a, b) => a - b)
  return {
    rps: times.length / (durationMs / 1000),
    p50: percentile(times, 50),
    p99: percentile(times, 99),
  }
}

/** Sends `count` requests, `concurrency` at a time. */
export async function repeat(
  send: () => Promise<void>,
  count: number,
  concurrency: number,
): Promise<void> {
  let left = count
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left > 0) {
        left -= 1
        await send()
      }
    }),
  )
}
