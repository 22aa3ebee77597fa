/**
 * A count of bytes held at once, up to a capacity: a semaphore on bytes. Whoever takes bytes
 * gives them back with the release it was handed.
 */
export class ByteBudget {
  readonly capacity: number
  #held = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Bytes taken and not given back. */
  get held(): number {
    return this.#held
  }

  /**
   * Takes `bytes` when they fit beside what is held, or when nothing is held (so one taker is
   * let through however much it asks: a bound on what is held at once, never a refusal of
   * everything). Returns the release (idempotent), or `undefined` when they do not fit now.
   */
  tryTake(bytes: number): (() => void) | undefined {
    if (this.#held > 0 && this.#held + bytes > this.capacity) return undefined
    this.#held += bytes
    let released = false
    return () => {
      if (released) return
      released = true
      this.#held -= bytes
    }
  }
}
