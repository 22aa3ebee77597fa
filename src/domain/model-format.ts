/** What a model archive holds, as declared by the uploader (and then checked by parsing). */
export const MODEL_FORMATS = ['safetensors', 'onnx', 'pytorch', 'huggingface'] as const
export type ModelFormat = (typeof MODEL_FORMATS)[number]
