/**
 * A container's output as the Engine API streams it (`/containers/{id}/logs` and
 * `/services/{id}/logs` of a container without a TTY): frames of an 8-byte header (the stream,
 * three zero bytes, the payload's length big-endian) and the payload, which splits lines
 * anywhere. Whole lines are handed on, stdout's and stderr's alike; a line longer than
 * `MAX_LINE` is handed on in pieces, so a runner printing without newlines holds no memory.
 */
const HEADER_BYTES = 8
const MAX_LINE = 16 * 1024

export class LogLines {
  readonly #onLine: (line: string) => void
  #pending: Buffer = Buffer.alloc(0)
  /** Each stream's unfinished line (1: stdout, 2: stderr). */
  readonly #partial = new Map<number, string>()

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine
  }

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    while (this.#pending.length >= HEADER_BYTES) {
      const size = this.#pending.readUInt32BE(4)
      if (this.#pending.length < HEADER_BYTES + size) return
      const stream = this.#pending[0] as number
      const text = this.#pending.toString('utf8', HEADER_BYTES, HEADER_BYTES + size)
      this.#pending = this.#pending.subarray(HEADER_BYTES + size)
      this.#lines(stream, text)
    }
  }

  /** Hands on what is left unfinished: the stream has ended. */
  end(): void {
    for (const line of this.#partial.values()) if (line !== '') this.#onLine(line)
    this.#partial.clear()
  }

  #lines(stream: number, text: string): void {
    const parts = `${this.#partial.get(stream) ?? ''}${text}`.split('\n')
    let rest = parts.pop() ?? ''
    for (const line of parts) this.#onLine(line.replace(/\r$/, ''))
    while (rest.length > MAX_LINE) {
      this.#onLine(rest.slice(0, MAX_LINE))
      rest = rest.slice(MAX_LINE)
    }
    this.#partial.set(stream, rest)
  }
}
