import { useState } from 'preact/hooks'
import { type Api, ApiError, apiFor, dataOf, describeError } from './api.js'
import { Workspace } from './workspace.js'

/** Kept for the browser tab only: closing it signs out. */
const KEY_ITEM = 'berth.apiKey'

export function App() {
  const [api, setApi] = useState<Api | undefined>(() => {
    const key = sessionStorage.getItem(KEY_ITEM)
    return key === null ? undefined : apiFor(key)
  })
  if (api === undefined) {
    return (
      <SignIn
        onSignedIn={(signedIn) => {
          sessionStorage.setItem(KEY_ITEM, signedIn.key)
          setApi(signedIn)
        }}
      />
    )
  }
  return (
    <Workspace
      api={api}
      onSignOut={() => {
        sessionStorage.removeItem(KEY_ITEM)
        setApi(undefined)
      }}
    />
  )
}

function SignIn({ onSignedIn }: { onSignedIn: (api: Api) => void }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState<string | undefined>()
  const [busy, setBusy] = useState(false)
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    const api = apiFor(key.trim())
    try {
      // Any call that needs a key tells whether this one is good.
      await dataOf(api.client.GET('/v1/namespaces'))
      onSignedIn(api)
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? `That key was refused: ${describeError(err)}`
          : describeError(err),
      )
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class="sign-in">
      <form onSubmit={submit} class="card">
        <h1>
          <span class="logo">berth</span> console
        </h1>
        <label>
          API key
          <input
            name="api_key"
            type="password"
            autocomplete="off"
            placeholder="sk_…"
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
        {error !== undefined && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <p class="hint">
          The key stays in this tab only. The API itself is documented at <a href="/docs">/docs</a>.
        </p>
      </form>
    </main>
  )
}
