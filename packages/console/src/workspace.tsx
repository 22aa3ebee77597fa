import { useEffect, useState } from 'preact/hooks'
import { type Api, ApiError, dataOf, describeError, type Namespace } from './api.js'
import { bytes } from './format.js'
import { ModelPanel } from './model-panel.js'
import { ModelTable } from './model-table.js'
import { usePoll } from './poll.js'
import { Stale } from './stale.js'
import { UploadPanel } from './upload-panel.js'

/** Where the user is, kept in the address's hash so a reload stays there. */
interface Place {
  readonly namespace?: string | undefined
  readonly model?: string | undefined
}

function placeOfHash(): Place {
  const [, namespace, model] = /^#\/([^/]+)(?:\/([^/]+))?/.exec(location.hash) ?? []
  try {
    return {
      ...(namespace === undefined ? {} : { namespace: decodeURIComponent(namespace) }),
      ...(model === undefined ? {} : { model: decodeURIComponent(model) }),
    }
  } catch {
    // A hash typed or cut by hand (`#/%E0`): start from the top rather than not at all.
    return {}
  }
}

/** Shows an error until dismissed or replaced; `undefined` clears it. */
export type Notify = (error: unknown) => void

export function Workspace({ api, onSignOut }: { api: Api; onSignOut: () => void }) {
  const [place, setPlace] = useState<Place>(placeOfHash)
  const [error, setError] = useState<string | undefined>()
  const notify: Notify = (err) => setError(err === undefined ? undefined : describeError(err))
  useEffect(() => {
    const follow = () => setPlace(placeOfHash())
    addEventListener('hashchange', follow)
    return () => removeEventListener('hashchange', follow)
  }, [])
  const go = (next: Place) => {
    location.hash =
      next.namespace === undefined
        ? ''
        : `#/${encodeURIComponent(next.namespace)}${next.model === undefined ? '' : `/${encodeURIComponent(next.model)}`}`
  }
  const namespaces = usePoll(
    async () => (await dataOf(api.client.GET('/v1/namespaces'))).namespaces,
    5000,
    api.key,
  )
  // A key revoked (or a server that forgot it) while signed in: back to the sign-in form.
  const refused = namespaces.error instanceof ApiError && namespaces.error.status === 401
  useEffect(() => {
    if (refused) onSignOut()
  }, [refused, onSignOut])
  const list = namespaces.value ?? []
  const current = list.find((n) => n.namespace_id === place.namespace) ?? list[0]
  return (
    <div class="workspace">
      <header>
        <span class="logo">berth</span>
        <NodeCapacity api={api} />
        <button type="button" class="quiet" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <Stale error={namespaces.error} />
      {error !== undefined && (
        <div class="banner error" role="alert">
          <span>{error}</span>
          <button type="button" class="quiet" onClick={() => setError(undefined)}>
            Dismiss
          </button>
        </div>
      )}
      <div class="columns">
        <Namespaces
          api={api}
          namespaces={list}
          current={current?.namespace_id}
          onSelect={(id) => go({ namespace: id })}
          onChanged={namespaces.refresh}
          notify={notify}
        />
        <main>
          {current === undefined ? (
            <p class="hint">Create a namespace to upload models into.</p>
          ) : (
            <NamespaceView
              api={api}
              namespace={current}
              model={place.model}
              onSelectModel={(model) => go({ namespace: current.namespace_id, model })}
              notify={notify}
            />
          )}
        </main>
      </div>
    </div>
  )
}

function NamespaceView(props: {
  api: Api
  namespace: Namespace
  model: string | undefined
  onSelectModel: (model: string | undefined) => void
  notify: Notify
}) {
  const { api, namespace, notify } = props
  const id = namespace.namespace_id
  const models = usePoll(
    async () =>
      (
        await dataOf(
          api.client.GET('/v1/namespaces/{namespace_id}/models', {
            params: { path: { namespace_id: id } },
          }),
        )
      ).models,
    2000,
    id,
  )
  const selected = models.value?.find((m) => m.model_id === props.model)
  return (
    <>
      <h2>
        {namespace.namespace_name} <small>{id}</small>
      </h2>
      <UploadPanel
        api={api}
        namespace={id}
        notify={notify}
        onUploaded={(modelId) => {
          models.refresh()
          props.onSelectModel(modelId)
        }}
      />
      <Stale error={models.error} />
      <ModelTable
        models={models.value}
        selected={props.model}
        onSelect={(model) => props.onSelectModel(model)}
      />
      {selected !== undefined && (
        <ModelPanel
          api={api}
          namespace={id}
          item={selected}
          notify={notify}
          onChanged={models.refresh}
          onDeleted={() => {
            props.onSelectModel(undefined)
            models.refresh()
          }}
        />
      )}
    </>
  )
}

function Namespaces(props: {
  api: Api
  namespaces: readonly Namespace[]
  current: string | undefined
  onSelect: (id: string) => void
  onChanged: () => void
  notify: Notify
}) {
  const { api, notify } = props
  const [name, setName] = useState('')
  const create = async (event: Event) => {
    event.preventDefault()
    try {
      const created = await dataOf(
        api.client.POST('/v1/namespaces', { body: { namespace_name: name.trim() } }),
      )
      setName('')
      props.onChanged()
      props.onSelect(created.namespace_id)
      notify(undefined)
    } catch (err) {
      notify(err)
    }
  }
  const remove = async (namespace: Namespace) => {
    // The server refuses a namespace that still has models (409 namespace_not_empty).
    if (!confirm(`Delete the empty namespace ${namespace.namespace_name}?`)) return
    try {
      await dataOf(
        api.client.DELETE('/v1/namespaces/{namespace}', {
          params: { path: { namespace: namespace.namespace_id } },
        }),
      )
      props.onChanged()
    } catch (err) {
      notify(err)
    }
  }
  return (
    <nav class="namespaces">
      <h3>Namespaces</h3>
      <ul>
        {props.namespaces.map((n) => (
          <li key={n.namespace_id} class={n.namespace_id === props.current ? 'current' : ''}>
            <button type="button" class="link" onClick={() => props.onSelect(n.namespace_id)}>
              {n.namespace_name}
            </button>
            <button
              type="button"
              class="quiet small"
              title={`Delete ${n.namespace_name}`}
              onClick={() => remove(n)}
            >
              ✕
            </button>
          </li>
        ))}
      </ul>
      <form onSubmit={create} class="inline">
        <input
          name="namespace_name"
          placeholder="new namespace"
          value={name}
          onInput={(e) => setName(e.currentTarget.value)}
          required
        />
        <button type="submit">Create</button>
      </form>
    </nav>
  )
}

function NodeCapacity({ api }: { api: Api }) {
  const node = usePoll(async () => dataOf(api.client.GET('/v1/node')), 5000, api.key)
  const n = node.value?.node
  if (n === undefined) return <span class="node" />
  return (
    <span class="node" title="What this server offers deployments, and what they hold now">
      CPUs {n.reserved.cpus} / {n.cpus} · memory {bytes(n.reserved.memory_bytes)} /{' '}
      {bytes(n.memory_bytes)} · GPUs {n.reserved.gpus} / {n.gpus}
    </span>
  )
}
