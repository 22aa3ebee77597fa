/**
 * The error kinds: what went wrong, independent of transport. `http/error-handler.ts` is the
 * only place that turns a kind into a status code and a Mixpeek `error.type`.
 */
export type ErrorKind =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'too_large'
  | 'headers_too_large'
  | 'uri_too_long'
  | 'client_too_slow'
  | 'invalid_field'
  | 'resource_exhausted'
  | 'internal'
  | 'unavailable'
  | 'deadline_exceeded'

/**
 * Every error code berth can produce, with its kind. Codes are API: never rename or reuse one.
 * `docs/errors.md` documents each of them; `test/conventions/error-codes-doc.test.ts` keeps the
 * two equal.
 */
export const ERROR_CODES = {
  // configuration and command line
  config_invalid: 'invalid_argument',
  data_dir_locked: 'failed_precondition',
  cli_usage_invalid: 'invalid_argument',
  cli_server_unreachable: 'unavailable',
  cli_database_missing: 'not_found',
  metadata_unavailable: 'unavailable',
  artifacts_unavailable: 'unavailable',
  // requests
  request_malformed: 'invalid_argument',
  request_body_too_large: 'too_large',
  request_headers_too_large: 'headers_too_large',
  request_uri_too_long: 'uri_too_long',
  request_timeout: 'client_too_slow',
  request_validation_failed: 'invalid_field',
  form_field_too_large: 'too_large',
  form_too_many_fields: 'too_large',
  route_not_found: 'not_found',
  console_not_built: 'not_found',
  // authentication and organizations
  api_key_missing: 'unauthenticated',
  api_key_invalid: 'unauthenticated',
  api_key_not_found: 'not_found',
  metrics_token_invalid: 'unauthenticated',
  metrics_not_exposed: 'permission_denied',
  custom_models_not_enabled: 'permission_denied',
  organization_not_found: 'not_found',
  organization_name_taken: 'already_exists',
  tier_invalid: 'invalid_argument',
  // namespaces
  namespace_not_found: 'not_found',
  namespace_name_taken: 'already_exists',
  namespace_not_empty: 'failed_precondition',
  namespace_query_invalid: 'invalid_argument',
  // models
  model_not_found: 'not_found',
  model_already_exists: 'already_exists',
  // the organization registry (presigned upload → confirm → enable)
  org_model_not_found: 'not_found',
  org_model_enabled: 'failed_precondition',
  org_model_not_enabled: 'not_found',
  org_model_not_validated: 'invalid_argument',
  upload_not_found: 'not_found',
  upload_not_received: 'invalid_argument',
  upload_already_received: 'already_exists',
  upload_url_invalid: 'permission_denied',
  // artifact store
  artifact_exists: 'already_exists',
  artifact_not_found: 'not_found',
  stored_archive_corrupt: 'internal',
  // archives: every rejection has its own code
  archive_too_large: 'too_large',
  archive_not_gzip: 'invalid_argument',
  archive_not_tar: 'invalid_argument',
  archive_truncated: 'invalid_argument',
  archive_empty: 'invalid_argument',
  archive_has_symlink: 'invalid_argument',
  archive_has_hardlink: 'invalid_argument',
  archive_has_device: 'invalid_argument',
  archive_has_fifo: 'invalid_argument',
  archive_unsupported_entry: 'invalid_argument',
  archive_absolute_path: 'invalid_argument',
  archive_path_traversal: 'invalid_argument',
  archive_invalid_path: 'invalid_argument',
  archive_duplicate_path: 'invalid_argument',
  archive_too_many_entries: 'invalid_argument',
  archive_unpacked_too_large: 'invalid_argument',
  archive_compression_ratio_exceeded: 'invalid_argument',
  // model content: checked by parsing, never by file name alone
  model_format_mismatch: 'invalid_argument',
  onnx_invalid: 'invalid_argument',
  onnx_external_data_invalid: 'invalid_argument',
  safetensors_invalid: 'invalid_argument',
  safetensors_index_invalid: 'invalid_argument',
  huggingface_config_invalid: 'invalid_argument',
  pytorch_invalid: 'invalid_argument',
  unsafe_pickle: 'invalid_argument',
  // runners and inference
  model_load_failed: 'invalid_argument',
  inference_failed: 'invalid_argument',
  runner_crashed: 'unavailable',
  runner_protocol_error: 'unavailable',
  runner_start_timeout: 'unavailable',
  runner_timeout: 'deadline_exceeded',
  runner_memory_limit_exceeded: 'unavailable',
  runner_unresponsive: 'unavailable',
  model_not_ready: 'unavailable',
  model_not_servable: 'invalid_argument',
  runtime_unavailable: 'unavailable',
  container_engine_unavailable: 'unavailable',
  container_engine_failed: 'unavailable',
  task_not_supported: 'invalid_argument',
  model_has_no_tensors: 'invalid_argument',
  model_not_convertible: 'invalid_argument',
  tensor_not_found: 'not_found',
  weights_corrupt: 'internal',
  inference_out_of_memory: 'too_large',
  inference_input_too_large: 'too_large',
  inference_output_too_large: 'too_large',
  inference_timeout: 'deadline_exceeded',
  queue_full: 'resource_exhausted',
  decode_budget_full: 'resource_exhausted',
  infer_request_invalid: 'invalid_argument',
  input_unknown: 'invalid_argument',
  input_missing: 'invalid_argument',
  input_datatype_mismatch: 'invalid_argument',
  input_shape_mismatch: 'invalid_argument',
  input_data_invalid: 'invalid_argument',
  output_unknown: 'invalid_argument',
  text_too_long: 'invalid_argument',
  provider_not_supported: 'invalid_argument',
  namespace_header_missing: 'invalid_argument',
  deployment_transition_invalid: 'internal',
  // server
  server_shutting_down: 'unavailable',
  internal_error: 'internal',
} as const satisfies Readonly<Record<string, ErrorKind>>

export type ErrorCode = keyof typeof ERROR_CODES
