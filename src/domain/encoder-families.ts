/**
 * Transformer encoder families berth serves from weights alone: `config.json` `model_type`s
 * whose checkpoints the converter turns into an ONNX graph.
 */
export const CONVERTIBLE_FAMILIES = ['bert', 'roberta', 'xlm-roberta', 'distilbert'] as const
export type EncoderFamily = (typeof CONVERTIBLE_FAMILIES)[number]

export function isConvertible(modelType: string | null): modelType is EncoderFamily {
  return (CONVERTIBLE_FAMILIES as readonly string[]).includes(modelType ?? '')
}
