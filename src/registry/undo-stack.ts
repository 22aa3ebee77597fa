/**
 * What a multi-step operation has to take back: each step it completes pushes the step that
 * removes what it made. `unwind` runs them newest first, each once; a step that fails does not
 * stop the others, so everything that can be removed is.
 */
export class UndoStack {
  readonly #steps: Array<() => Promise<unknown>> = []

  /** Adds a step to run on `unwind`. */
  push(step: () => Promise<unknown>): void {
    this.#steps.push(step)
  }

  /** Runs every step pushed so far, newest first, and forgets them. Never throws. */
  async unwind(): Promise<void> {
    for (let step = this.#steps.pop(); step !== undefined; step = this.#steps.pop()) {
      try {
        await step()
      } catch {
        // Best effort: what is left is swept at the next start (tmp/, orphaned model folders).
      }
    }
  }
}
