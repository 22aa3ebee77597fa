import { describeError } from './api.js'

/** Says a live view stopped refreshing, and why: what it shows may be out of date. */
export function Stale({ error }: { error: unknown }) {
  if (error === undefined) return null
  return (
    <p class="stale" role="status">
      Not refreshed: {describeError(error)}. What is shown may be out of date.
    </p>
  )
}
