import type { Model } from '../../domain/model.js'
import type { OrgModel } from '../../domain/org-model.js'
import { manifestView, signatureSchemas } from './model-view.js'

/**
 * An org model as `GET /v1/models/{model_id}` shows it (Mixpeek's `OrgModelDocument` + berth's),
 * with the namespace models that enable it: `deployed` when one of them is deployed (Mixpeek:
 * "deployed to any namespace"), `deployed_at` the first of their deployments.
 */
export function orgModelView(model: OrgModel, copies: readonly Model[]) {
  const deployedAt = copies
    .map((c) => c.deployment.deployedAt)
    .filter((at): at is string => at !== null)
    .sort()[0]
  return {
    model_id: model.modelId,
    organization_id: model.organizationId,
    name: model.name,
    version: model.version,
    description: model.description,
    s3_archive_url: model.archive.url,
    model_format: model.format,
    // Mixpeek's model_hash is a string, never null: empty until the archive is confirmed.
    model_hash: model.archive.sha256 ?? '',
    validation_status: model.validationStatus,
    validation_errors: [...model.validationErrors],
    framework: model.framework,
    task_type: model.taskType,
    deployed: copies.some((c) => c.deployment.status.state === 'deployed'),
    deployment_info: { deployed_at: deployedAt ?? null },
    ...signatureSchemas(model.manifest),
    enabled_in: copies.map((c) => c.namespaceId),
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
