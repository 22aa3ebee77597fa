import { basename } from 'node:path'
import { BerthError, isBerthError } from './berth-error.js'

/** An absolute path where a message names one: after its start, a blank, a quote or a bracket. */
const ABSOLUTE_PATH = /(^|[\s'"`([{=:,])(\/[^\s'"`)\]},;]+)/g

/**
 * `message` as a client may see it: paths under `root` (a model's folder) relative to it, and any
 * other absolute path cut to its last part. Runtimes name the files they fail on by the path they
 * were given (ONNX Runtime: "Load model from /…/model.onnx failed"), which tells a client where
 * the server keeps its data.
 */
export function hideServerPaths(message: string, root: string): string {
  const folder = root.replace(/\/+$/, '')
  const relative =
    folder === '' ? message : message.replaceAll(`${folder}/`, '').replaceAll(folder, '.')
  return relative.replace(
    ABSOLUTE_PATH,
    (_match, before: string, path: string) => `${before}${basename(path)}`,
  )
}

/** `err` with `hideServerPaths` applied to its message, when it is a berth error (else as is). */
export function withServerPathsHidden(err: unknown, root: string): unknown {
  if (!isBerthError(err)) return err
  const message = hideServerPaths(err.message, root)
  if (message === err.message) return err
  return new BerthError(err.code, message, {
    ...(err.details === undefined ? {} : { details: err.details }),
    cause: err,
  })
}
