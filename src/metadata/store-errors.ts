import { BerthError } from '../errors/berth-error.js'

// One builder per error, shared by every MetadataStore adapter, so all backends answer with the
// same code, message and details.

export function organizationNotFound(ref: string, cause?: unknown): BerthError {
  return new BerthError('organization_not_found', `no organization "${ref}"`, {
    details: { organization: ref },
    cause,
  })
}

export function organizationNameTaken(name: string, cause?: unknown): BerthError {
  return new BerthError(
    'organization_name_taken',
    `an organization named "${name}" already exists`,
    {
      details: { name },
      cause,
    },
  )
}

export function apiKeyNotFound(id: string): BerthError {
  return new BerthError('api_key_not_found', `no API key with id "${id}"`, {
    details: { key_id: id },
  })
}

export function namespaceNameTaken(name: string, cause?: unknown): BerthError {
  return new BerthError('namespace_name_taken', `a namespace named "${name}" already exists`, {
    details: { namespace_name: name },
    cause,
  })
}

export function namespaceNotEmpty(id: string, cause?: unknown): BerthError {
  return new BerthError(
    'namespace_not_empty',
    'the namespace still holds models; delete them first',
    {
      details: { namespace_id: id },
      cause,
    },
  )
}

export function modelAlreadyExists(
  namespaceId: string,
  modelId: string,
  cause?: unknown,
): BerthError {
  return new BerthError(
    'model_already_exists',
    `model "${modelId}" already exists in this namespace`,
    { details: { namespace_id: namespaceId, model_id: modelId }, cause },
  )
}

export function namespaceNotFound(ref: string, cause?: unknown): BerthError {
  return new BerthError('namespace_not_found', `namespace "${ref}" not found`, {
    details: { resource: 'namespace', id: ref },
    cause,
  })
}

export function orgModelNotFound(modelId: string, cause?: unknown): BerthError {
  return new BerthError('org_model_not_found', `org model "${modelId}" not found`, {
    details: { model_id: modelId },
    cause,
  })
}

export function orgModelAlreadyExists(modelId: string, cause?: unknown): BerthError {
  return new BerthError(
    'model_already_exists',
    `the organization already has model "${modelId}": upload another version`,
    { details: { model_id: modelId }, cause },
  )
}
