import type { Clock } from '../../src/domain/clock.js'

/** A clock that moves only when told: `tick(ms)` runs the timers that fall due, in order. */
export class TestClock implements Clock {
  #now: number
  #timers: { at: number; seq: number; fn: () => void }[] = []
  #seq = 0

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.#now + ms, seq: this.#seq++, fn }
    this.#timers.push(timer)
    return () => {
      this.#timers = this.#timers.filter((t) => t !== timer)
    }
  }

  /** Timers waiting to run, as delays from now. */
  get pending(): number[] {
    return this.#timers.map((t) => t.at - this.#now).sort((a, b) => a - b)
  }

  /** Moves time forward by `ms`, running each timer that falls due at its own time. */
  tick(ms: number): void {
    const end = this.#now + ms
    for (;;) {
      const due = this.#timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.#timers = this.#timers.filter((t) => t !== due)
      this.#now = Math.max(this.#now, due.at)
      due.fn()
    }
    this.#now = end
  }
}
