import { useState } from 'preact/hooks'
import type { Api } from './api.js'
import { useFields } from './fields.js'
import { bytes, seconds } from './format.js'
import { ServingFields } from './serving-fields.js'
import { archiveOf, type UploadProgress, uploadModel } from './upload.js'
import type { Notify } from './workspace.js'

const FORMATS = ['onnx', 'safetensors', 'pytorch', 'huggingface'] as const

/** The form's fields as the upload sends them (all text; empty ones are left out). */
const INITIAL = {
  name: '',
  version: '1.0.0',
  model_format: 'onnx',
  task_type: '',
  num_cpus: '1',
  memory_gb: '1',
  num_gpus: '0',
  replicas: '1',
  max_batch_size: '',
  max_queue_delay_us: '',
  load_policy: 'eager',
}
type Fields = typeof INITIAL

/** A name from the file's: `mnist-cnn.tar.gz` → `mnist-cnn`. */
function nameOf(file: File): string {
  return file.name.replace(/(\.tar\.gz|\.tgz|\.[a-z0-9]+)$/i, '').replace(/[^A-Za-z0-9._-]/g, '-')
}

export function UploadPanel(props: {
  api: Api
  namespace: string
  notify: Notify
  onUploaded: (modelId: string) => void
}) {
  const [file, setFile] = useState<File | undefined>()
  const { fields, setFields, field } = useFields<Fields>(INITIAL)
  const [progress, setProgress] = useState<UploadProgress | undefined>()
  const [status, setStatus] = useState<string | undefined>()
  const [dragging, setDragging] = useState(false)
  const choose = (chosen: File | undefined) => {
    if (chosen === undefined) return
    setFile(chosen)
    setProgress(undefined)
    setStatus(undefined)
    if (fields.name === '') setFields({ ...fields, name: nameOf(chosen) })
  }
  const submit = async (event: Event) => {
    event.preventDefault()
    if (file === undefined) return
    setStatus('Preparing…')
    try {
      const { blob, packed } = await archiveOf(file)
      setStatus(packed ? `Packed ${file.name} into a .tar.gz; uploading…` : 'Uploading…')
      const answer = await uploadModel({
        key: props.api.key,
        namespace: props.namespace,
        fields,
        archive: blob,
        fileName: file.name,
        onProgress: setProgress,
      })
      setStatus(`Uploaded ${answer.model_id}: ${answer.deployment_status}`)
      setFile(undefined)
      setFields(INITIAL)
      props.notify(undefined)
      props.onUploaded(answer.model_id)
    } catch (err) {
      setStatus(undefined)
      setProgress(undefined)
      props.notify(err)
    }
  }
  const rate = progress === undefined ? 0 : progress.sentBytes / (progress.elapsedMs / 1000)
  return (
    <form class="card upload" onSubmit={submit}>
      <h3>Upload a model</h3>
      <label
        class={`drop${dragging ? ' dragging' : ''}`}
        onDragOver={(e) => {
          e.preventDefault()
          setDragging(true)
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault()
          setDragging(false)
          choose(e.dataTransfer?.files[0])
        }}
      >
        <input
          type="file"
          name="file"
          onChange={(e) => choose(e.currentTarget.files?.[0])}
          hidden
        />
        {file === undefined ? (
          <span>
            Drop a <code>.tar.gz</code> or a single model file here, or click to choose
          </span>
        ) : (
          <span class="chosen">
            {file.name} · {bytes(file.size)}
          </span>
        )}
      </label>
      <div class="grid">
        <label>
          Name <input {...field('name')} required pattern="[A-Za-z0-9._-]+" />
        </label>
        <label>
          Version <input {...field('version')} required />
        </label>
        <label>
          Format
          <select {...field('model_format')}>
            {FORMATS.map((f) => (
              <option key={f} value={f}>
                {f}
              </option>
            ))}
          </select>
        </label>
        <label>
          Task <input {...field('task_type')} placeholder="none: tensors" />
        </label>
        <label>
          CPUs <input {...field('num_cpus')} type="number" min="0.1" step="0.1" />
        </label>
        <label>
          Memory (GB) <input {...field('memory_gb')} type="number" min="0.1" step="0.1" />
        </label>
        <label>
          GPUs <input {...field('num_gpus')} type="number" min="0" step="1" />
        </label>
        <ServingFields field={field} />
      </div>
      <button type="submit" disabled={file === undefined || status?.endsWith('…')}>
        Upload and deploy
      </button>
      {progress !== undefined && (
        <div class="progress">
          <progress
            aria-label="Upload progress"
            value={progress.sentBytes}
            max={progress.totalBytes}
          />
          <span class="figures">
            {bytes(progress.sentBytes)} of {bytes(progress.totalBytes)} · {bytes(rate)}/s
            {progress.sentBytes < progress.totalBytes && rate > 0
              ? ` · ${seconds((progress.totalBytes - progress.sentBytes) / rate)} left`
              : ''}
          </span>
        </div>
      )}
      {status !== undefined && <p class="status">{status}</p>}
    </form>
  )
}
