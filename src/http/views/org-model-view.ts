import type { OrgModel } from '../../domain/org-model.js'
import { manifestView } from './model-view.js'

/** An org model as `GET /v1/models/{model_id}` shows it (Mixpeek's `OrgModelDocument` + berth's). */
export function orgModelView(model: OrgModel) {
  return {
    model_id: model.modelId,
    organization_id: model.organizationId,
    name: model.name,
    version: model.version,
    description: model.description,
    s3_archive_url: model.archive.url,
    model_format: model.format,
    model_hash: model.archive.sha256,
    validation_status: model.validationStatus,
    validation_errors: [...model.validationErrors],
    framework: model.framework,
    task_type: model.taskType,
    resource_requirements: {
      num_cpus: model.resources.numCpus,
      num_gpus: model.resources.numGpus,
      memory: model.resources.memoryBytes,
    },
    manifest: model.manifest === null ? null : manifestView(model.manifest),
    upload_id: model.uploadId,
    created_at: model.createdAt,
    updated_at: model.updatedAt,
  }
}
