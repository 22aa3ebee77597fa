/**
 * Proves that a runtime can load a model before berth accepts it: an uploaded ONNX model must
 * parse and load. Implementations load untrusted models out of the server's process.
 */
export interface ModelLoadCheck {
  /** Loads the ONNX model at `modelPath` and unloads it. Throws `model_load_failed`. */
  checkOnnx(modelPath: string): Promise<void>
}
