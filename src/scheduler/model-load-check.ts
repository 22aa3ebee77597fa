/**
 * Proves that a runtime can load a model before berth accepts it: an uploaded ONNX model must
 * parse and load. Implementations load untrusted models out of the server's process.
 */
export interface ModelLoadCheck {
  /**
   * Loads the ONNX model `file` (a path inside the model's folder `root`) and unloads it. Throws
   * `model_load_failed`, whose message names files relative to `root`.
   */
  checkOnnx(root: string, file: string): Promise<void>
}
