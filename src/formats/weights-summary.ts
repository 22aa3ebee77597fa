import type { WeightsDetails } from '../domain/manifest.js'

/** What every weights reader knows of a tensor. */
interface TensorShape {
  readonly dtype: string
  readonly shape: readonly number[]
}

/** Tensor count, parameter count and tensors per dtype: the same summary for every weights format. */
export function summarizeWeights(
  tensors: readonly TensorShape[],
): Pick<WeightsDetails, 'tensorCount' | 'parameterCount' | 'dtypes'> {
  const dtypes: Record<string, number> = {}
  for (const t of tensors) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1
  return {
    tensorCount: tensors.length,
    parameterCount: tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0),
    dtypes,
  }
}
