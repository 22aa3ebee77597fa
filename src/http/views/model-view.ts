import type { Deployment } from '../../domain/deployment-state.js'
import {
  type HuggingFaceDetails,
  type Manifest,
  type OnnxDetails,
  servedOnnx,
  type WeightsDetails,
} from '../../domain/manifest.js'
import type { Model } from '../../domain/model.js'
import type { TensorSpec } from '../../tensors/tensor.js'

/** The deployment as berth shows it. */
export function deploymentView(deployment: Deployment, replicas: number) {
  return {
    state: deployment.status.state,
    desired: deployment.desired,
    reason: deployment.status.reason,
    since: deployment.status.since,
    message: deployment.message,
    replicas,
  }
}

/** The model record as `GET …/models/{model_id}` shows it (Mixpeek's fields, then berth's). */
export function modelView(model: Model, endpoint: string, replicas: number) {
  return {
    model_id: model.modelId,
    namespace_id: model.namespaceId,
    name: model.name,
    version: model.version,
    model_format: model.format,
    framework: model.framework,
    task_type: model.taskType,
    model_archive_url: model.archive.url,
    model_hash: model.archive.sha256,
    file_size_bytes: model.archive.sizeBytes,
    deployed: model.deployment.status.state === 'deployed',
    deployment_info: {
      endpoint,
      base_image: model.manifest.baseImage,
      deployed_at: model.deployment.deployedAt,
    },
    resource_requirements: resourcesView(model),
    ...signatureSchemas(model.manifest),
    deployment: deploymentView(model.deployment, replicas),
    serving: servingView(model),
    manifest: manifestView(model.manifest),
    created_at: model.createdAt,
    updated_at: model.updatedAt,
  }
}

/** A model as `GET …/models` lists it: Mixpeek's fields, then what a dashboard shows of it. */
export function modelListItemView(model: Model, endpoint: string | null, replicas: number) {
  return {
    model_id: model.modelId,
    name: model.name,
    version: model.version,
    model_format: model.format,
    framework: model.framework,
    task_type: model.taskType,
    deployed: model.deployment.status.state === 'deployed',
    endpoint,
    created_at: model.createdAt,
    updated_at: model.updatedAt,
    runtime: model.manifest.runtime,
    deployment: deploymentView(model.deployment, replicas),
    resource_requirements: resourcesView(model),
    serving: servingView(model),
  }
}

function resourcesView(model: Model) {
  return {
    num_cpus: model.resources.numCpus,
    num_gpus: model.resources.numGpus,
    memory: model.resources.memoryBytes,
  }
}

function servingView(model: Model) {
  return {
    max_batch_size: model.serving.maxBatchSize,
    max_queue_delay_us: model.serving.maxQueueDelayUs,
    replicas: model.serving.replicas,
    load_policy: model.serving.loadPolicy,
    idle_timeout_s: model.serving.idleTimeoutS,
    node_selector: model.serving.nodeSelector,
  }
}

/** Mixpeek's `input_schema` and `output_schema`: the graph's tensors, when berth knows them. */
export function signatureSchemas(manifest: Manifest | null) {
  const onnx = manifest === null ? undefined : servedOnnx(manifest)
  return {
    input_schema: onnx === undefined ? null : { inputs: onnx.inputs.map(tensorView) },
    output_schema: onnx === undefined ? null : { outputs: onnx.outputs.map(tensorView) },
  }
}

export function manifestView(manifest: Manifest): Record<string, unknown> {
  const common = {
    format: manifest.format,
    runtime: manifest.runtime,
    base_image: manifest.baseImage,
    total_bytes: manifest.totalBytes,
    files: manifest.files.map((f) => ({ path: f.path, size_bytes: f.sizeBytes, sha256: f.sha256 })),
  }
  const d = manifest.details
  switch (d.kind) {
    case 'onnx':
      return { ...common, onnx: onnxView(d) }
    case 'weights':
      return { ...common, weights: weightsView(d) }
    case 'torchscript':
      return { ...common, torchscript: { file: d.file } }
    case 'huggingface':
      return { ...common, huggingface: huggingFaceView(d) }
  }
}

function huggingFaceView(d: HuggingFaceDetails) {
  const st = d.sentenceTransformers
  return {
    model_type: d.modelType,
    architectures: d.architectures,
    tokenizer_files: d.tokenizerFiles,
    sentence_transformers:
      st === null ? null : { modules: st.modules, pooling: st.pooling, normalize: st.normalize },
    ...(d.weights.kind === 'onnx'
      ? { onnx: onnxView(d.weights) }
      : { weights: weightsView(d.weights) }),
  }
}

function onnxView(d: OnnxDetails) {
  return {
    primary_file: d.primaryFile,
    ir_version: d.irVersion,
    opsets: d.opsets,
    producer: d.producer,
    external_data_files: d.externalDataFiles,
    inputs: d.inputs.map(tensorView),
    outputs: d.outputs.map(tensorView),
  }
}

function weightsView(d: WeightsDetails) {
  return {
    source: d.source,
    weight_files: d.weightFiles,
    tensor_count: d.tensorCount,
    parameter_count: d.parameterCount,
    dtypes: d.dtypes,
    architecture: d.architecture,
  }
}

function tensorView(spec: TensorSpec) {
  return { name: spec.name, datatype: spec.datatype, shape: [...spec.shape] }
}
