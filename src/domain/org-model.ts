import type { Manifest } from './manifest.js'
import type { ModelDescriptor } from './model.js'

/** Where an org model's archive stands: uploaded and not checked yet, usable, or refused. */
export type ValidationStatus = 'pending' | 'passed' | 'failed'

/** Bounds on the presigned URL's life (Mixpeek's `presigned_url_expiration`), in seconds. */
export const UPLOAD_URL_MIN_SECONDS = 60
export const UPLOAD_URL_MAX_SECONDS = 86_400
export const UPLOAD_URL_DEFAULT_SECONDS = 3600

/**
 * A model in the organization registry: uploaded once through a presigned URL,
 * validated on confirm, then enabled in any of the organization's namespaces. Its archive is
 * the organization's: namespaces that enable it share it.
 */
export interface OrgModel extends ModelDescriptor {
  readonly organizationId: string
  /** `{name}_{version with . as _}`, unique in the organization. */
  readonly modelId: string
  /** `upl_…`: names the upload and the archive; unique everywhere. */
  readonly uploadId: string
  readonly description: string | null
  readonly archive: {
    readonly key: string
    readonly url: string
    /** Known once confirmed. */
    readonly sha256: string | null
    readonly sizeBytes: number | null
  }
  readonly validationStatus: ValidationStatus
  readonly validationErrors: readonly string[]
  /** What validation found; `null` until it passed. */
  readonly manifest: Manifest | null
  /** Until when the presigned URL takes the archive. */
  readonly uploadExpiresAt: string
  readonly createdAt: string
  readonly updatedAt: string
}

/** What confirming an upload records. */
export interface OrgModelValidation {
  readonly validationStatus: ValidationStatus
  readonly validationErrors: readonly string[]
  readonly manifest: Manifest | null
  readonly sha256: string | null
  readonly sizeBytes: number | null
  readonly updatedAt: string
}
