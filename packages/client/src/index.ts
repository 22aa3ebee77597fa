export type { components, paths } from './api.js'
export { archiveFrom, BerthInputError, type PreparedArchive } from './archive.js'
export {
  BerthClient,
  type BerthClientOptions,
  type Schemas,
  type UploadFields,
  type UploadOptions,
  type UploadProgress,
  type WaitOptions,
} from './client.js'
export { BerthApiError, BerthConnectionError } from './errors.js'
export {
  type Datatype,
  datatypeOf,
  type OutputTensor,
  type Tensor,
  type TypedArray,
} from './tensors.js'
export { type Deployment, isSettled, WaitTimeout } from './wait.js'
