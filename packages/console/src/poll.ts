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
  const [value, setValue] = useState<T | undefined>(undefined)
  const [error, setError] = useState<unknown>(undefined)
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
          if (stopped) return
          setValue(next)
          setError(undefined)
        } catch (err) {
          if (!stopped) setError(err)
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
  useEffect(() => setValue(undefined), [key])
  return { value, error, refresh: () => setTick((n) => n + 1) }
}
