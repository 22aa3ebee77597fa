import { open as openFile } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import yauzl, { type Entry, type ZipFile } from 'yauzl'
import { BerthError, isBerthError } from '../../errors/berth-error.js'
import { PickleGlobal, PickleTuple, unpickle, unsafePickle } from './safe-unpickler.js'

/** One tensor of a state_dict, as its pickle describes it (the bytes stay in the zip). */
export interface TorchTensor {
  readonly name: string
  /** safetensors dtype names (`F32`, `BF16`, …). */
  readonly dtype: string
  readonly shape: readonly number[]
  readonly stride: readonly number[]
  readonly storageOffset: number
  /** Zip entry holding the storage's bytes. */
  readonly storageEntry: string
}

export type TorchCheckpoint =
  | { readonly kind: 'state_dict'; readonly tensors: readonly TorchTensor[] }
  | { readonly kind: 'torchscript' }

/** Torch's typed-storage classes, which a checkpoint names to give a storage its dtype. */
const STORAGE_DTYPES: Readonly<Record<string, readonly [dtype: string, itemBytes: number]>> = {
  FloatStorage: ['F32', 4],
  DoubleStorage: ['F64', 8],
  HalfStorage: ['F16', 2],
  BFloat16Storage: ['BF16', 2],
  LongStorage: ['I64', 8],
  IntStorage: ['I32', 4],
  ShortStorage: ['I16', 2],
  CharStorage: ['I8', 1],
  ByteStorage: ['U8', 1],
  BoolStorage: ['BOOL', 1],
}

/** Everything a state_dict pickle may name. */
const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
])

const MAX_PICKLE_BYTES = 64 * 1024 * 1024
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04])

interface Storage {
  readonly entry: string
  readonly dtype: string
  readonly numel: number
}

interface Tensor extends Omit<TorchTensor, 'name'> {
  readonly isTensor: true
}

/**
 * Reads an untrusted torch checkpoint (`torch.save` zip format) without running pickle code:
 * a TorchScript archive is recognised by its layout and not opened further; a state_dict's
 * pickle is read by the allowlisting unpickler, and every tensor is checked to lie inside its
 * storage, whose size must match the zip entry. Throws `unsafe_pickle` or `pytorch_invalid`.
 */
export async function readTorchCheckpoint(path: string, label: string): Promise<TorchCheckpoint> {
  await assertZip(path, label)
  let zip: ZipFile
  try {
    zip = await yauzl.openPromise(path, {
      lazyEntries: true,
      autoClose: false,
      strictFileNames: true,
      validateEntrySizes: true,
    })
  } catch (err) {
    throw invalid(label, 'it is not a readable zip file', err)
  }
  try {
    const entries = new Map<string, Entry>()
    for await (const entry of zip.eachEntry()) entries.set(entry.fileName, entry)
    const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name))
    const [pickleName] = pickles
    if (pickleName === undefined || pickles.length > 1) {
      throw invalid(label, 'it has no single <name>/data.pkl')
    }
    const prefix = pickleName.slice(0, -'data.pkl'.length)
    if (
      entries.has(`${prefix}constants.pkl`) ||
      [...entries.keys()].some((n) => n.startsWith(`${prefix}code/`))
    ) {
      return { kind: 'torchscript' }
    }
    const pickleEntry = entries.get(pickleName) as Entry
    if (pickleEntry.uncompressedSize > MAX_PICKLE_BYTES)
      throw invalid(label, 'its data.pkl is larger than 64 MiB')
    const pickle = await readEntry(zip, pickleEntry)
    const root = unpickle(pickle, stateDictHooks(prefix, entries, label))
    if (!(root instanceof Map)) throw invalid(label, 'its pickle is not a dict of tensors')
    const tensors: TorchTensor[] = []
    collectTensors(root, '', tensors)
    return { kind: 'state_dict', tensors }
  } catch (err) {
    if (isBerthError(err)) throw withFile(err, label)
    throw invalid(label, 'it is not a readable torch checkpoint', err)
  } finally {
    zip.close()
  }
}

async function assertZip(path: string, label: string): Promise<void> {
  const file = await openFile(path, 'r')
  const head = Buffer.alloc(4)
  try {
    await file.read(head, 0, 4, 0)
  } finally {
    await file.close()
  }
  if (head.equals(ZIP_MAGIC)) return
  // Pre-1.6 torch files are bare pickles with no zip around them: refused, never read.
  if (head[0] === 0x80) {
    throw withFile(unsafePickle('a legacy (non-zip) torch pickle'), label)
  }
  throw invalid(label, 'it is not a torch zip checkpoint')
}

function stateDictHooks(prefix: string, entries: ReadonlyMap<string, Entry>, label: string) {
  return {
    allowGlobal: (global: PickleGlobal) => ALLOWED_GLOBALS.has(global.qualifiedName),
    reduce: (global: PickleGlobal, args: readonly unknown[]): unknown => {
      switch (global.qualifiedName) {
        case 'collections.OrderedDict':
          return new Map()
        case 'torch._utils._rebuild_tensor_v2':
          return rebuildTensor(args, label)
        case 'torch._utils._rebuild_parameter': {
          const [data] = args
          if (!isTensor(data))
            throw invalid(label, 'a parameter wraps something other than a tensor')
          return data
        }
        default:
          throw invalid(label, `its pickle calls ${global.qualifiedName}`)
      }
    },
    build: (target: unknown, _state: unknown): unknown => {
      // OrderedDict state is the state_dict's `_metadata` (version numbers); tensors may carry
      // requires_grad state. Neither matters to the weights.
      if (target instanceof Map || isTensor(target)) return target
      throw invalid(label, 'its pickle sets state on an unexpected object')
    },
    persistentLoad: (pid: unknown): Storage => {
      const [tag, type, key, , numel] = pid instanceof PickleTuple ? pid.items : []
      const storage = type instanceof PickleGlobal ? STORAGE_DTYPES[type.name] : undefined
      if (
        tag !== 'storage' ||
        storage === undefined ||
        typeof key !== 'string' ||
        !Number.isSafeInteger(numel)
      ) {
        throw invalid(label, 'its pickle has a malformed storage reference')
      }
      const entry = entries.get(`${prefix}data/${key}`)
      const [dtype, itemBytes] = storage
      if (entry === undefined || entry.uncompressedSize !== (numel as number) * itemBytes) {
        throw invalid(label, `storage ${key} does not match its declared size`)
      }
      return { entry: entry.fileName, dtype, numel: numel as number }
    },
  }
}

function rebuildTensor(args: readonly unknown[], label: string): Tensor {
  const [storage, offset, size, stride] = args
  const ints = (v: unknown): number[] | undefined =>
    v instanceof PickleTuple && v.items.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)
      ? (v.items as number[])
      : undefined
  const shape = ints(size)
  const strides = ints(stride)
  if (
    !isStorage(storage) ||
    !Number.isSafeInteger(offset) ||
    (offset as number) < 0 ||
    shape === undefined ||
    strides === undefined ||
    shape.length !== strides.length
  ) {
    throw invalid(label, 'a tensor has a malformed view')
  }
  const start = offset as number
  const empty = shape.some((d) => d === 0)
  const last = empty
    ? start - 1
    : shape.reduce((end, d, i) => end + (d - 1) * (strides[i] ?? 0), start)
  if (!Number.isSafeInteger(last) || last >= storage.numel || start > storage.numel) {
    throw invalid(label, 'a tensor view reaches past the end of its storage')
  }
  return {
    isTensor: true,
    dtype: storage.dtype,
    shape,
    stride: strides,
    storageOffset: start,
    storageEntry: storage.entry,
  }
}

function collectTensors(dict: Map<unknown, unknown>, prefix: string, out: TorchTensor[]): void {
  for (const [key, value] of dict) {
    const name = `${prefix}${String(key)}`
    if (isTensor(value)) {
      const { isTensor: _, ...tensor } = value
      out.push({ name, ...tensor })
    } else if (value instanceof Map) collectTensors(value, `${name}.`, out)
  }
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && (value as Tensor).isTensor === true
}

function isStorage(value: unknown): value is Storage {
  return typeof value === 'object' && value !== null && typeof (value as Storage).entry === 'string'
}

async function readEntry(zip: ZipFile, entry: Entry): Promise<Buffer> {
  const stream: Readable = await zip.openReadStreamPromise(entry)
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function invalid(file: string, reason: string, cause?: unknown): BerthError {
  return new BerthError('pytorch_invalid', `${file} is not a valid torch checkpoint: ${reason}`, {
    details: { file, reason },
    cause,
  })
}

/** The same error, with the archive file it came from in its details. */
function withFile(err: BerthError, file: string): BerthError {
  if (err.details?.file !== undefined) return err
  return new BerthError(err.code, `${file}: ${err.message}`, {
    details: { ...err.details, file },
    cause: err.cause,
  })
}
