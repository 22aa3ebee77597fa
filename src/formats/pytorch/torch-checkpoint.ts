import { open as openFile } from 'node:fs/promises'
import { Readable } from 'node:stream'
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
/** Entries walked over all of a state_dict's (nested) dicts: far above any real checkpoint. */
const MAX_DICT_ENTRIES = 1_000_000
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
  const opened = await openCheckpoint(path, label)
  opened.zip.close()
  return opened.checkpoint
}

/** A state_dict kept open to read its tensors' bytes. */
export interface TorchStateDict {
  readonly tensors: readonly TorchTensor[]
  /**
   * The tensor's elements, contiguous in row-major order, little-endian: what `t.contiguous()`
   * holds, whatever its strides and however it shares its storage.
   */
  bytesOf(tensor: TorchTensor): Promise<Buffer>
  /** The same bytes as a stream: read straight from the zip when the view is contiguous. */
  streamOf(tensor: TorchTensor): Promise<Readable>
  close(): void
}

/** Opens a state_dict checkpoint for reading (checked as `readTorchCheckpoint` does). */
export async function openTorchStateDict(path: string, label: string): Promise<TorchStateDict> {
  const { zip, entries, checkpoint } = await openCheckpoint(path, label)
  if (checkpoint.kind !== 'state_dict') {
    zip.close()
    throw invalid(label, 'it is a TorchScript module, not a state_dict')
  }
  const storageOf = (tensor: TorchTensor) => {
    const entry = entries.get(tensor.storageEntry)
    const [, itemBytes] = Object.values(STORAGE_DTYPES).find(([d]) => d === tensor.dtype) ?? []
    if (entry === undefined || itemBytes === undefined) {
      throw invalid(label, `tensor "${tensor.name}" has no storage`)
    }
    return { entry, itemBytes }
  }
  const bytesOf = (tensor: TorchTensor) => {
    const { entry, itemBytes } = storageOf(tensor)
    return gather(tensor, itemBytes, (start, end) => readEntryRange(zip, entry, start, end))
  }
  return {
    tensors: checkpoint.tensors,
    bytesOf,
    streamOf: async (tensor) => {
      const { entry, itemBytes } = storageOf(tensor)
      const numel = tensor.shape.reduce((a, b) => a * b, 1)
      if (numel > 0 && entry.compressionMethod === 0 && isContiguous(tensor.shape, tensor.stride)) {
        const start = tensor.storageOffset * itemBytes
        return zip.openReadStreamPromise(entry, { start, end: start + numel * itemBytes })
      }
      return Readable.from([await bytesOf(tensor)])
    },
    close: () => zip.close(),
  }
}

async function openCheckpoint(
  path: string,
  label: string,
): Promise<{ zip: ZipFile; entries: Map<string, Entry>; checkpoint: TorchCheckpoint }> {
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
      return { zip, entries, checkpoint: { kind: 'torchscript' } }
    }
    const pickleEntry = entries.get(pickleName) as Entry
    if (pickleEntry.uncompressedSize > MAX_PICKLE_BYTES)
      throw invalid(label, 'its data.pkl is larger than 64 MiB')
    const pickle = await readEntry(zip, pickleEntry)
    const root = unpickle(pickle, stateDictHooks(prefix, entries, label))
    if (!(root instanceof Map)) throw invalid(label, 'its pickle is not a dict of tensors')
    const tensors = collectTensors(root, label)
    return { zip, entries, checkpoint: { kind: 'state_dict', tensors } }
  } catch (err) {
    zip.close()
    if (isBerthError(err)) throw withFile(err, label)
    throw invalid(label, 'it is not a readable torch checkpoint', err)
  }
}

/**
 * Copies a strided view out of its storage into row-major order. Only the storage span the view
 * covers is read; runs along a unit-stride last dimension are copied whole.
 */
async function gather(
  tensor: TorchTensor,
  itemBytes: number,
  read: (start: number, end: number) => Promise<Buffer>,
): Promise<Buffer> {
  const { shape, stride, storageOffset } = tensor
  const numel = shape.reduce((a, b) => a * b, 1)
  if (numel === 0) return Buffer.alloc(0)
  const last = shape.reduce((end, d, i) => end + (d - 1) * (stride[i] ?? 0), storageOffset)
  const span = await read(storageOffset * itemBytes, (last + 1) * itemBytes)
  if (isContiguous(shape, stride)) return span
  const out = Buffer.alloc(numel * itemBytes)
  const rank = shape.length
  const inner = shape[rank - 1] ?? 1
  const run = stride[rank - 1] === 1 ? inner : 1
  const index = new Array<number>(rank).fill(0)
  for (let written = 0; written < numel; written += run) {
    let element = 0
    for (let i = 0; i < rank; i++) element += (index[i] ?? 0) * (stride[i] ?? 0)
    span.copy(out, written * itemBytes, element * itemBytes, (element + run) * itemBytes)
    // Advance the index by `run` elements, in row-major order.
    for (let i = run === inner ? rank - 2 : rank - 1; i >= 0; i--) {
      index[i] = (index[i] ?? 0) + 1
      if ((index[i] as number) < (shape[i] ?? 1)) break
      index[i] = 0
    }
  }
  return out
}

/** Whether a view is laid out row-major without gaps (size-1 dims may have any stride). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1
  for (let i = shape.length - 1; i >= 0; i--) {
    const d = shape[i] ?? 1
    if (d !== 1 && stride[i] !== expected) return false
    expected *= d
  }
  return true
}

/** Bytes `[start, end)` of an entry; without decompressing all of it when it is stored. */
async function readEntryRange(
  zip: ZipFile,
  entry: Entry,
  start: number,
  end: number,
): Promise<Buffer> {
  if (entry.compressionMethod === 0) {
    return collect(await zip.openReadStreamPromise(entry, { start, end }))
  }
  return (await readEntry(zip, entry)).subarray(start, end)
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

/**
 * The tensors under `root`, named by their key path. The walk is bounded: a pickle can put one
 * dict under two keys at every level (the memo shares it), which a few hundred bytes turn into
 * 2^levels paths, and can put a dict inside itself.
 */
function collectTensors(root: Map<unknown, unknown>, label: string): TorchTensor[] {
  const out: TorchTensor[] = []
  const ancestors = new Set<Map<unknown, unknown>>([root])
  let walked = 0
  const walk = (dict: Map<unknown, unknown>, prefix: string): void => {
    for (const [key, value] of dict) {
      walked += 1
      if (walked > MAX_DICT_ENTRIES) {
        throw invalid(label, `its pickle has more than ${MAX_DICT_ENTRIES} dict entries`)
      }
      const name = `${prefix}${String(key)}`
      if (isTensor(value)) {
        const { isTensor: _, ...tensor } = value
        out.push({ name, ...tensor })
      } else if (value instanceof Map) {
        if (ancestors.has(value)) throw invalid(label, 'its pickle has a dict inside itself')
        ancestors.add(value)
        walk(value, `${name}.`)
        ancestors.delete(value)
      }
    }
  }
  walk(root, '')
  return out
}

function isTensor(value: unknown): value is Tensor {
  return typeof value === 'object' && value !== null && (value as Tensor).isTensor === true
}

function isStorage(value: unknown): value is Storage {
  return typeof value === 'object' && value !== null && typeof (value as Storage).entry === 'string'
}

async function readEntry(zip: ZipFile, entry: Entry): Promise<Buffer> {
  return collect(await zip.openReadStreamPromise(entry))
}

async function collect(stream: Readable): Promise<Buffer> {
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
