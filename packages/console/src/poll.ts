import { useEffect, useRef, useState } from 'preact/hooks'

export interface Polled<T> {
  readonly value: T | undefined
  readonly error: unknown
  /** Fetches again now (after a change the user made). */
  readonly refresh: () => void
}

/**
 * `load()` now and every `everyMs` while the page is visible: the console's live view. A change
 * of `key` starts over.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, key: string): Polled<T> {
  // What the poll of `key` last found: a new key shows nothing of the old one's.
  const [seen, setSeen] = useState<{ key: string; value?: T | undefined; error?: unknown }>({ key })
  const [tick, setTick] = useState(0)
  const latest = useRef(load)
  latest.current = load
  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const run = async () => {
      if (!document.hidden) {
        try {
          const next = await latest.current()
          if (!stopped) setSeen({ key, value: next })
        } catch (err) {
          // A failed refresh keeps what was shown, with why it is not refreshed.
          if (!stopped)
            setSeen((s) => ({ key, value: s.key === key ? s.value : undefined, error: err }))
        }
      }
      if (!stopped) timer = setTimeout(run, everyMs)
    }
    void run()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [key, tick, everyMs])
  const current = seen.key === key ? seen : { key }
  return { value: current.value, error: current.error, refresh: () => setTick((n) => n + 1) }
}
