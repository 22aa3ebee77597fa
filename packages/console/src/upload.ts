import { createTarGzip } from 'nanotar'
import { ApiError, type Schemas } from './api.js'

export interface UploadProgress {
  readonly sentBytes: number
  readonly totalBytes: number
  readonly elapsedMs: number
}

/** The largest single file packed in the browser: packing holds it whole in memory. */
const MAX_PACKED_BYTES = 512 * 1024 ** 2

/** A `.tar.gz` as it is, any other single file packed into one (e.g. a bare `model.onnx`). */
export async function archiveOf(file: File): Promise<{ blob: Blob; packed: boolean }> {
  if (/\.(tar\.gz|tgz)$/i.test(file.name)) return { blob: file, packed: false }
  if (file.size > MAX_PACKED_BYTES) {
    throw new ApiError(
      0,
      'file_too_large_to_pack',
      `${file.name} is too large to pack in the browser: upload a .tar.gz of it, or use the CLI (berth upload ${file.name} …), which packs as it streams`,
    )
  }
  const gzipped = await createTarGzip([
    { name: file.name, data: new Uint8Array(await file.arrayBuffer()) },
  ])
  return {
    blob: new Blob([gzipped as Uint8Array<ArrayBuffer>], { type: 'application/gzip' }),
    packed: true,
  }
}

/**
 * Uploads `archive` with `fields` into `namespace` (fields first, then the file), reporting
 * progress as the browser sends it: `fetch` cannot report an upload's progress, so this is the
 * one call made with XMLHttpRequest.
 */
export function uploadModel(options: {
  readonly key: string
  readonly namespace: string
  readonly fields: Readonly<Record<string, string>>
  readonly archive: Blob
  readonly fileName: string
  readonly onProgress: (progress: UploadProgress) => void
}): Promise<Schemas['ModelUploadResponse']> {
  const form = new FormData()
  for (const [name, value] of Object.entries(options.fields)) {
    if (value !== '') form.append(name, value)
  }
  form.append('file', options.archive, options.fileName.replace(/(\.tar\.gz|\.tgz)?$/i, '.tar.gz'))
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open('POST', `/v1/namespaces/${encodeURIComponent(options.namespace)}/models`)
    xhr.setRequestHeader('authorization', `Bearer ${options.key}`)
    xhr.responseType = 'json'
    xhr.upload.onprogress = (event) => {
      options.onProgress({
        sentBytes: event.loaded,
        totalBytes: event.lengthComputable ? event.total : options.archive.size,
        elapsedMs: performance.now() - started,
      })
    }
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr.response)
      else reject(ApiError.of(xhr.status, xhr.response))
    }
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'the upload was cut off'))
    xhr.send(form)
  })
}
