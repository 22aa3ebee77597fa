import { type Api, type DeploySettings, dataOf, type ModelItem } from './api.js'
import { ModelCharts } from './charts.js'
import { useFields } from './fields.js'
import { bytes } from './format.js'
import { StateBadge, stateOf } from './model-table.js'
import { usePoll } from './poll.js'
import { ServingFields } from './serving-fields.js'
import { Stale } from './stale.js'
import { TryIt } from './try-it.js'
import type { Notify } from './workspace.js'

export function ModelPanel(props: {
  api: Api
  namespace: string
  item: ModelItem
  notify: Notify
  onChanged: () => void
  onDeleted: () => void
}) {
  const { api, namespace, item, notify } = props
  const path = { namespace_id: namespace, model_id: item.model_id }
  const state = stateOf(item)
  const serving = state === 'deployed' || state === 'loading' || state === 'pending'
  const detail = usePoll(
    async () =>
      (
        await dataOf(
          api.client.GET('/v1/namespaces/{namespace_id}/models/{model_id}', { params: { path } }),
        )
      ).model,
    5000,
    `${namespace}/${item.model_id}`,
  )
  const model = detail.value
  const act = async (action: () => Promise<unknown>) => {
    try {
      await action()
      notify(undefined)
    } catch (err) {
      notify(err)
    }
    props.onChanged()
    detail.refresh()
  }
  const deploy = (settings: DeploySettings) =>
    act(() =>
      dataOf(
        api.client.POST('/v1/namespaces/{namespace_id}/models/{model_id}/deploy', {
          // A serving model gets new runners (reload), whether or not its settings changed.
          params: { path, query: serving ? { reload: 'true' } : {} },
          body: settings,
        }),
      ),
    )
  const undeploy = () =>
    act(() =>
      dataOf(
        api.client.POST('/v1/namespaces/{namespace_id}/models/{model_id}/undeploy', {
          params: { path },
        }),
      ),
    )
  const remove = async () => {
    if (!confirm(`Delete ${item.name} ${item.version}? Its files go too.`)) return
    try {
      await dataOf(
        api.client.DELETE('/v1/namespaces/{namespace_id}/models/{model_id}', { params: { path } }),
      )
      props.onDeleted()
    } catch (err) {
      notify(err)
    }
  }
  return (
    <section class="card model" data-model-panel={item.model_id}>
      <h3>
        {item.name} <small>{item.version}</small> <StateBadge state={state} />
      </h3>
      {item.deployment !== undefined && (
        <p class="reason-line">
          {item.deployment.reason}
          {item.deployment.message !== null && `: ${item.deployment.message}`}
        </p>
      )}
      <Stale error={detail.error} />
      {model !== undefined && (
        <dl class="facts">
          <dt>Runtime</dt>
          <dd>{String(model.manifest.runtime ?? model.model_format)}</dd>
          <dt>Archive</dt>
          <dd>{bytes(model.file_size_bytes)}</dd>
          <dt>Endpoint</dt>
          <dd>
            <code>{model.deployment_info.endpoint}</code>
          </dd>
        </dl>
      )}
      <DeployForm
        key={item.model_id}
        serving={item.serving}
        deployed={serving}
        undeployable={state !== 'not_deployed'}
        onDeploy={deploy}
        onUndeploy={undeploy}
        onDelete={remove}
      />
      {model !== undefined && <TryIt api={api} namespace={namespace} model={model} />}
      <ModelCharts api={api} namespace={namespace} modelId={item.model_id} />
    </section>
  )
}

function DeployForm(props: {
  serving: ModelItem['serving']
  deployed: boolean
  /** Anything but not deployed: a failed model's wish to be deployed can be withdrawn too. */
  undeployable: boolean
  onDeploy: (settings: DeploySettings) => void
  onUndeploy: () => void
  onDelete: () => void
}) {
  const s = props.serving
  const { fields, field } = useFields({
    replicas: String(s?.replicas ?? 1),
    max_batch_size: s?.max_batch_size == null ? '' : String(s.max_batch_size),
    max_queue_delay_us: String(s?.max_queue_delay_us ?? 0),
    load_policy: s?.load_policy ?? 'eager',
  })
  const settings = (): DeploySettings => ({
    replicas: Number(fields.replicas),
    max_batch_size: fields.max_batch_size === '' ? null : Number(fields.max_batch_size),
    max_queue_delay_us: Number(fields.max_queue_delay_us),
    load_policy: fields.load_policy === 'on_demand' ? 'on_demand' : 'eager',
  })
  return (
    <form
      class="deploy inline"
      onSubmit={(e) => {
        e.preventDefault()
        props.onDeploy(settings())
      }}
    >
      <ServingFields field={field} />
      <button type="submit">{props.deployed ? 'Redeploy' : 'Deploy'}</button>
      <button type="button" onClick={props.onUndeploy} disabled={!props.undeployable}>
        Undeploy
      </button>
      <button type="button" class="danger" onClick={props.onDelete}>
        Delete
      </button>
    </form>
  )
}
