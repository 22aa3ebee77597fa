/** The input or select props `useFields` gives for a field. */
type FieldProps = {
  name: string
  value: string
  onInput: (e: { currentTarget: { value: string } }) => void
}

/** How a model is served, as the upload form and the deploy form both set it. */
export function ServingFields({
  field,
}: {
  field: (name: 'replicas' | 'max_batch_size' | 'max_queue_delay_us' | 'load_policy') => FieldProps
}) {
  return (
    <>
      <label>
        Replicas <input {...field('replicas')} type="number" min="1" max="16" />
      </label>
      <label>
        Max batch <input {...field('max_batch_size')} type="number" min="1" placeholder="auto" />
      </label>
      <label>
        Queue delay (µs){' '}
        <input {...field('max_queue_delay_us')} type="number" min="0" placeholder="0" />
      </label>
      <label>
        Load policy
        <select {...field('load_policy')}>
          <option value="eager">eager</option>
          <option value="on_demand">on demand</option>
        </select>
      </label>
    </>
  )
}
