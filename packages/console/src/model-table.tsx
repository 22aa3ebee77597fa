import type { ModelItem } from './api.js'
import { ago, bytes } from './format.js'

export function ModelTable(props: {
  models: readonly ModelItem[] | undefined
  selected: string | undefined
  onSelect: (model: string) => void
}) {
  if (props.models === undefined) return <p class="hint">Loading models…</p>
  if (props.models.length === 0) return <p class="hint">No models here yet: upload one above.</p>
  return (
    <table class="models">
      <thead>
        <tr>
          <th>Model</th>
          <th>State</th>
          <th>Runtime</th>
          <th>Resources</th>
          <th>Replicas</th>
          <th>Updated</th>
        </tr>
      </thead>
      <tbody>
        {props.models.map((m) => (
          <tr
            key={m.model_id}
            data-model={m.model_id}
            class={m.model_id === props.selected ? 'selected' : ''}
            onClick={() => props.onSelect(m.model_id)}
          >
            <td>
              <button type="button" class="link">
                {m.name}
              </button>{' '}
              <small>{m.version}</small>
            </td>
            <td>
              <StateBadge state={stateOf(m)} />
              {m.deployment !== undefined && m.deployment.reason !== m.deployment.state && (
                <small class="reason"> {m.deployment.reason}</small>
              )}
            </td>
            <td>{m.runtime ?? m.model_format}</td>
            <td>
              {m.resource_requirements === undefined
                ? '–'
                : `${m.resource_requirements.num_cpus} CPU · ${bytes(m.resource_requirements.memory)}${m.resource_requirements.num_gpus > 0 ? ` · ${m.resource_requirements.num_gpus} GPU` : ''}`}
            </td>
            <td>
              {m.deployment?.replicas ?? '–'} / {m.serving?.replicas ?? '–'}
            </td>
            <td>{ago(m.updated_at)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}

/** A model's deployment state as the list gives it (a server without berth's fields: `deployed`). */
export function stateOf(item: ModelItem): string {
  return item.deployment?.state ?? (item.deployed ? 'deployed' : 'unknown')
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`state state-${state}`}>{state.replace('_', ' ')}</span>
}
