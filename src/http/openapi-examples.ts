/**
 * An example request body and answer for the operations of the OpenAPI document, taken from a
 * real server's answers (ids, times and hashes as one run gave them); the analytics and the Open
 * Inference Protocol extensions carry theirs on their schemas. `test/e2e/
 * openapi-examples.test.ts` checks that every operation has one or the other and that each is
 * valid by its operation's schema, so they cannot drift from what the routes take and give.
 */

const NS = 'ns_999b14abc4fa7b49ffd0'
const ORG = 'org_3ad3559d2b3c862515c6'
const AT = '2026-12-07T12:45:01.800Z'
const ENDPOINT = `http://127.0.0.1:8080/v1/namespaces/${NS}/models/tiny-mlp_1_0_0/infer`
const ARCHIVE = `berth://archives/${NS}/upl_e820050ac9149a3bbc5b.tar.gz`
const X = { name: 'x', datatype: 'FP32', shape: ['batch', 4] }
const Y = { name: 'y', datatype: 'FP32', shape: ['batch', 3] }

const namespace = {
  namespace_id: NS,
  namespace_name: 'production',
  description: 'models in production',
  created_at: AT,
  updated_at: AT,
}
const deployment = {
  state: 'deployed',
  desired: 'deployed',
  reason: 'ready',
  since: AT,
  message: null,
  replicas: 1,
}
const undeployed = { ...deployment, state: 'not_deployed', desired: 'not_deployed' }
const manifest = {
  format: 'onnx',
  runtime: 'onnx',
  base_image: 'berth/runtime-minimal',
  total_bytes: 509,
  files: [{ path: 'model.onnx', size_bytes: 509, sha256: '9a4864bd6d75e399c6c5f2ab3b07…' }],
  onnx: {
    primary_file: 'model.onnx',
    ir_version: 8,
    opsets: { '': 13 },
    inputs: [X],
    outputs: [Y],
  },
}
const model = {
  model_id: 'tiny-mlp_1_0_0',
  namespace_id: NS,
  name: 'tiny-mlp',
  version: '1.0.0',
  model_format: 'onnx',
  framework: null,
  task_type: null,
  model_archive_url: ARCHIVE,
  model_hash: '806e6a0bf7e6db0eca728cdb90e975234eb1c8f8cf9d51d0a2baca5d1926871d',
  file_size_bytes: 583,
  deployed: true,
  deployment_info: { endpoint: ENDPOINT, base_image: 'berth/runtime-minimal', deployed_at: AT },
  resource_requirements: { num_cpus: 1, num_gpus: 0, memory: 536870912 },
  input_schema: { inputs: [X] },
  output_schema: { outputs: [Y] },
  deployment,
  serving: {
    max_batch_size: null,
    max_queue_delay_us: 0,
    replicas: 1,
    load_policy: 'eager',
    idle_timeout_s: null,
    node_selector: {},
  },
  manifest,
  created_at: AT,
  updated_at: AT,
}
const orgModel = {
  model_id: 'shared-mlp_1_0_0',
  name: 'shared-mlp',
  version: '1.0.0',
  model_format: 'onnx',
  description: 'an MLP for every namespace',
  framework: null,
  task_type: null,
  validation_status: 'passed',
}
const inferRequest = {
  inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
}
const inferAnswer = {
  model_name: 'tiny-mlp',
  model_version: '1.0.0',
  outputs: [
    {
      name: 'y',
      datatype: 'FP32',
      shape: [1, 3],
      data: [0.5177634954452515, -3.6033225059509277, -0.9537584781646729],
    },
  ],
}
/** The binary tensor extension: the JSON header, then the input's 16 raw bytes. */
const binaryInfer =
  '{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}],"parameters":{"binary_data_output":true}}<16 bytes: 1, 2, 3, 4 as little-endian FP32> (Inference-Header-Content-Length: 126)'
const metrics =
  '# HELP berth_inference_requests_total Inference requests by outcome\n# TYPE berth_inference_requests_total counter\nberth_inference_requests_total{namespace="production",model="tiny-mlp",version="1.0.0",outcome="success"} 1\n'

const READY = { name: 'tiny-mlp', ready: true }
const OIP_METADATA = {
  name: 'tiny-mlp',
  versions: ['1.0.0'],
  platform: 'onnxruntime_onnx',
  model_id: 'tiny-mlp_1_0_0',
  inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 3] }],
}

interface Examples {
  /** The request body's example, by content type. */
  readonly request?: Readonly<Record<string, unknown>>
  /** The 200 answer's example, by content type. */
  readonly answer: Readonly<Record<string, unknown>>
}

const json = (value: unknown) => ({ 'application/json': value })
const inferExamples: Examples = {
  request: {
    'application/json': inferRequest,
    'application/octet-stream': binaryInfer,
  },
  answer: json(inferAnswer),
}

/** By operation: `method path`, the path as the document writes it. */
export const OPERATION_EXAMPLES: Readonly<Record<string, Examples>> = {
  'get /healthz': { answer: json({ status: 'ok' }) },
  'get /metrics': { answer: { 'text/plain': metrics } },
  'get /v1/metrics': { answer: { 'text/plain': metrics } },
  'post /v1/namespaces': {
    request: json({ namespace_name: 'production', description: 'models in production' }),
    answer: json(namespace),
  },
  'get /v1/namespaces': { answer: json({ success: true, namespaces: [namespace], total: 1 }) },
  'get /v1/namespaces/{namespace}': { answer: json(namespace) },
  'patch /v1/namespaces/{namespace}': {
    request: json({ namespace_name: 'production', description: 'models in production' }),
    answer: json(namespace),
  },
  'put /v1/namespaces/{namespace}': {
    request: json({ namespace_name: 'production' }),
    answer: json(namespace),
  },
  'delete /v1/namespaces/{namespace}': {
    answer: json({ success: true, namespace_id: NS, message: 'namespace "production" deleted' }),
  },
  'post /v1/namespaces/list': {
    request: json({
      filters: { namespace_name: { $regex: '^prod' } },
      sort: { field: 'namespace_name', direction: 'asc' },
    }),
    answer: json({
      results: [namespace],
      pagination: {
        total: 1,
        page: 1,
        page_size: 10,
        total_pages: 1,
        next_page: null,
        previous_page: null,
        next_cursor: null,
        has_more: false,
        limit: 10,
        skip: 0,
      },
      total_count: 1,
      stats: null,
    }),
  },
  'post /v1/namespaces/{namespace_id}/models': {
    request: {
      'multipart/form-data': {
        name: 'tiny-mlp',
        version: '1.0.0',
        model_format: 'onnx',
        memory_gb: 0.5,
        file: '<tiny-mlp.tar.gz>',
      },
    },
    answer: json({
      success: true,
      model_id: 'tiny-mlp_1_0_0',
      deployment_status: 'deployed',
      endpoint: ENDPOINT,
      model_archive_url: ARCHIVE,
      deployment,
    }),
  },
  'get /v1/namespaces/{namespace_id}/models': {
    answer: json({
      success: true,
      models: [
        {
          model_id: 'tiny-mlp_1_0_0',
          name: 'tiny-mlp',
          version: '1.0.0',
          model_format: 'onnx',
          framework: null,
          task_type: null,
          deployed: true,
          endpoint: ENDPOINT,
          created_at: AT,
          updated_at: AT,
        },
      ],
      total: 1,
      namespace_id: NS,
    }),
  },
  'get /v1/namespaces/{namespace_id}/models/{model_id}': {
    answer: json({ success: true, model }),
  },
  'delete /v1/namespaces/{namespace_id}/models/{model_id}': {
    answer: json({
      success: true,
      model_id: 'tiny-mlp_1_0_0',
      message: 'model "tiny-mlp_1_0_0" deleted',
    }),
  },
  'post /v1/namespaces/{namespace_id}/models/{model_id}/deploy': {
    request: json({ replicas: 2, max_batch_size: 32, load_policy: 'eager' }),
    answer: json({
      success: true,
      model_id: 'tiny-mlp_1_0_0',
      namespace_id: NS,
      deployment_status: 'deployed',
      cached: false,
      message: 'model "tiny-mlp_1_0_0" deployed',
      deployment: { ...deployment, replicas: 2 },
    }),
  },
  'post /v1/namespaces/{namespace_id}/models/{model_id}/undeploy': {
    answer: json({
      success: true,
      model_id: 'tiny-mlp_1_0_0',
      namespace_id: NS,
      deployment_status: 'not_deployed',
      message: 'model "tiny-mlp_1_0_0" undeployed',
      deployment: { ...undeployed, reason: 'undeployed', replicas: 0 },
    }),
  },
  'get /v1/namespaces/{namespace_id}/models/{model_id}/tensors': {
    answer: json({
      success: true,
      model_id: 'tiny-encoder_1_0_0',
      tensor_count: 2,
      parameter_count: 2080,
      tensors: [
        { name: 'encoder.weight', dtype: 'F32', shape: [32, 64] },
        { name: 'encoder.bias', dtype: 'F32', shape: [32] },
      ],
    }),
  },
  'get /v1/namespaces/{namespace_id}/models/{model_id}/tensors/{tensor_name}': {
    answer: { 'application/json': '<128 bytes: encoder.bias, 32 little-endian F32>' },
  },
  'post /v1/namespaces/{namespace_id}/models/{model_id}/infer': inferExamples,
  'post /v2/models/{name}/infer': inferExamples,
  'post /v2/models/{name}/versions/{version}/infer': inferExamples,
  'post /v1/inference': {
    request: json({ inference_name: 'minilm_1_0_0', inputs: { text: 'machine learning' } }),
    answer: json({
      data: [0.0123, -0.0456, 0.0789],
      provider: 'berth',
      model: 'minilm_1_0_0',
      latency_ms: 4.212,
      cached: false,
      tokens_used: { prompt: 4, total: 4 },
    }),
  },
  'post /v1/embeddings': {
    request: json({ model: 'production/minilm_1_0_0', input: ['a cat', 'a dog'] }),
    answer: json({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.0123, -0.0456, 0.0789] },
        { object: 'embedding', index: 1, embedding: [0.0211, -0.0398, 0.0702] },
      ],
      model: 'production/minilm_1_0_0',
      usage: { prompt_tokens: 8, total_tokens: 8 },
    }),
  },
  'post /v1/models/uploads': {
    request: json({ name: 'shared-mlp', version: '1.0.0', model_format: 'onnx' }),
    answer: json({
      upload_id: 'upl_b191435c310938ad7cc5',
      presigned_url:
        'http://127.0.0.1:8080/v1/models/uploads/upl_b191435c310938ad7cc5/archive?expires=1796651102&signature=a9f99f2f…',
      s3_key: `org/${ORG}/upl_b191435c310938ad7cc5.tar.gz`,
      expires_at: '2026-12-07T13:45:02.046Z',
      organization_id: ORG,
      name: 'shared-mlp',
      version: '1.0.0',
      model_format: 'onnx',
    }),
  },
  'put /v1/models/uploads/{upload_id}/archive': {
    answer: json({ success: true, message: '583 bytes received' }),
  },
  'post /v1/models/uploads/{upload_id}/confirm': {
    request: json({}),
    answer: json({
      success: true,
      upload_id: 'upl_b191435c310938ad7cc5',
      model_id: 'shared-mlp_1_0_0',
      validation_status: 'passed',
      validation_errors: null,
      s3_archive_url: `berth://archives/org/${ORG}/upl_b191435c310938ad7cc5.tar.gz`,
      message: 'org model "shared-mlp_1_0_0" is ready to enable in namespaces',
    }),
  },
  'get /v1/models': {
    answer: json({
      success: true,
      models: [{ ...orgModel, deployed: false, created_at: AT, updated_at: AT }],
      total: 1,
      organization_id: ORG,
    }),
  },
  'get /v1/models/{model_id}': {
    answer: json({
      success: true,
      model: {
        ...orgModel,
        organization_id: ORG,
        s3_archive_url: `berth://archives/org/${ORG}/upl_b191435c310938ad7cc5.tar.gz`,
        model_hash: '806e6a0bf7e6db0eca728cdb90e975234eb1c8f8cf9d51d0a2baca5d1926871d',
        validation_errors: [],
        deployed: true,
        deployment_info: { deployed_at: AT },
        input_schema: { inputs: [X] },
        output_schema: { outputs: [Y] },
        enabled_in: [NS],
        resource_requirements: { num_cpus: 1, num_gpus: 0, memory: 536870912 },
        manifest,
        upload_id: 'upl_b191435c310938ad7cc5',
        created_at: AT,
        updated_at: AT,
      },
    }),
  },
  'delete /v1/models/{model_id}': {
    answer: json({
      success: true,
      model_id: 'shared-mlp_1_0_0',
      message: 'org model "shared-mlp_1_0_0" and its archive deleted',
    }),
  },
  'get /v1/namespaces/{namespace_id}/models/available': {
    answer: json({
      success: true,
      models: [{ ...orgModel, enabled_in_namespace: false }],
      total: 1,
      namespace_id: NS,
    }),
  },
  'post /v1/namespaces/{namespace_id}/models/org/{model_id}/enable': {
    request: json({ deploy: true, resource_overrides: { num_cpus: 0.5 } }),
    answer: json({
      success: true,
      model_id: 'shared-mlp_1_0_0',
      namespace_id: NS,
      deployment_status: 'deployed',
      message: 'org model "shared-mlp_1_0_0" enabled in the namespace; deployment deployed',
    }),
  },
  'post /v1/namespaces/{namespace_id}/models/org/{model_id}/disable': {
    answer: json({
      success: true,
      model_id: 'shared-mlp_1_0_0',
      namespace_id: NS,
      message: 'org model "shared-mlp_1_0_0" disabled in the namespace',
    }),
  },
  'get /v1/node': {
    answer: json({
      node: {
        cpus: 8,
        memory_bytes: 25276182528,
        gpus: 0,
        reserved: { cpus: 0, memory_bytes: 92999680, gpus: 0 },
      },
      deployments: [
        {
          namespace_id: NS,
          namespace: 'production',
          model_id: 'tiny-mlp_1_0_0',
          ...deployment,
          load_policy: 'eager',
          processes: [23559],
          resident_bytes: 92999680,
          charged_memory_bytes: 92999680,
          last_used_at: '2026-12-07T12:45:02.017Z',
          active_requests: 0,
        },
      ],
    }),
  },
  'get /v2/health/live': { answer: json({ live: true }) },
  'get /v2/health/ready': { answer: json({ ready: true }) },
  'get /v2': {
    answer: json({
      name: 'berth',
      version: '0.1.0',
      extensions: ['binary_tensor_data', 'model_configuration', 'statistics', 'model_repository'],
    }),
  },
  'get /v2/models/{name}': { answer: json(OIP_METADATA) },
  'get /v2/models/{name}/versions/{version}': { answer: json(OIP_METADATA) },
  'get /v2/models/{name}/ready': { answer: json(READY) },
  'get /v2/models/{name}/versions/{version}/ready': { answer: json(READY) },
}
