import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { BerthError } from '../../src/errors/berth-error.js'
import type { ErrorCode } from '../../src/errors/error-codes.js'
import {
  PickleGlobal,
  type UnpickleHooks,
  unpickle,
  unsafePickle,
} from '../../src/formats/pytorch/safe-unpickler.js'
import { readTorchCheckpoint } from '../../src/formats/pytorch/torch-checkpoint.js'
import { type PickledTensor, pickle, stateDictPickle } from '../fixtures/pickle-builder.js'
import { zipStored } from '../fixtures/zip-builder.js'
import { tempDir } from '../helpers/temp-dir.js'
import {
  allocatesUnder,
  hostileBytes,
  parsedOrRefused,
  parsedOrRefusedAsync,
  runs,
  uintLE,
  withinMs,
} from './property-helpers.js'

/**
 * A torch checkpoint's pickle is a program from an untrusted upload. The unpickler interprets
 * it without running anything: a global it may name is asked of the allowlist first, and only
 * an allowed one is ever handed to `reduce`. Whatever the bytes, it returns a value or refuses
 * with `pytorch_invalid` / `unsafe_pickle` (400), in time proportional to the pickle.
 */

const CODES: readonly ErrorCode[] = ['pytorch_invalid', 'unsafe_pickle']

/** Storages every test checkpoint holds: `archive/data/<key>`, 96 bytes each. */
const STORAGE_KEYS = ['0', '1', '2', '3']
const STORAGE_BYTES = 96
const ITEM_BYTES = { FloatStorage: 4, HalfStorage: 2, LongStorage: 8, ByteStorage: 1 } as const
const DTYPES = { FloatStorage: 'F32', HalfStorage: 'F16', LongStorage: 'I64', ByteStorage: 'U8' }

const rowMajor = (shape: readonly number[]) =>
  shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1))

const validTensor: fc.Arbitrary<PickledTensor> = fc
  .tuple(
    fc.constantFrom(...(Object.keys(ITEM_BYTES) as (keyof typeof ITEM_BYTES)[])),
    fc.constantFrom(...STORAGE_KEYS),
    fc.array(fc.nat(4), { maxLength: 3 }),
    fc.nat(8),
  )
  .map(([storage, key, shape, offset]) => {
    const numel = STORAGE_BYTES / ITEM_BYTES[storage]
    return { storage, key, numel, offset, shape, stride: rowMajor(shape) }
  })
  .filter((t) => t.offset + t.shape.reduce((a, b) => a * b, 1) <= t.numel)

const validStateDict = fc.dictionary(
  fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }),
  validTensor,
  { maxKeys: 4 },
)

const validPickle = validStateDict.map((tensors) => new Uint8Array(stateDictPickle(tensors)))

/** Globals a pickle may name: the ones a state_dict needs, and ones that would run code. */
const GLOBALS: readonly (readonly [string, string])[] = [
  ['collections', 'OrderedDict'],
  ['torch._utils', '_rebuild_tensor_v2'],
  ['torch._utils', '_rebuild_parameter'],
  ['torch', 'FloatStorage'],
  ['os', 'system'],
  ['builtins', 'eval'],
  ['builtins', 'getattr'],
  ['posix', 'system'],
  ['__main__', 'MLP'],
]

/**
 * Random pickle programs: any sequence of the opcodes the unpickler reads, with arguments of
 * the right form. Reaches what byte mutations rarely do: memo sharing, cycles, stack games.
 */
const program: fc.Arbitrary<Uint8Array> = fc
  .array(
    fc.oneof(
      {
        weight: 8,
        arbitrary: fc.constantFrom(
          pickle.mark,
          pickle.none,
          pickle.newTrue,
          pickle.newFalse,
          pickle.emptyDict,
          pickle.emptyList,
          pickle.emptyTuple,
          pickle.tuple,
          pickle.tuple1,
          pickle.tuple2,
          pickle.tuple3,
          pickle.list,
          pickle.dict,
          pickle.append,
          pickle.appends,
          pickle.setItem,
          pickle.setItems,
          pickle.pop,
          pickle.popMark,
          pickle.dup,
          pickle.memoize,
          pickle.reduce,
          pickle.build,
          pickle.binPersId,
          pickle.stackGlobal,
          pickle.newObj,
        ),
      },
      { weight: 2, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(pickle.int) },
      { weight: 2, arbitrary: fc.string({ maxLength: 6 }).map(pickle.string) },
      { weight: 2, arbitrary: fc.constantFrom(...GLOBALS).map(([m, n]) => pickle.global(m, n)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(...GLOBALS.flat(), 'storage', 'cpu').map(pickle.string),
      },
      { weight: 2, arbitrary: fc.nat(6).map(pickle.binPut) },
      { weight: 2, arbitrary: fc.nat(6).map(pickle.binGet) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 9 }).map(pickle.long1) },
      { weight: 1, arbitrary: fc.double().map(pickle.float) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }).map(pickle.bytes) },
    ),
    { maxLength: 48 },
  )
  .map((ops) => new Uint8Array(Buffer.concat([pickle.proto(2), ...ops, pickle.stop])))

/**
 * Hooks shaped like the torch reader's, that record what the unpickler asks: `reduce` must only
 * ever see a global that `allowGlobal` approved, the very same object.
 */
function spyHooks() {
  const allowed = new Set([
    'collections.OrderedDict',
    'torch._utils._rebuild_tensor_v2',
    ...Object.keys(ITEM_BYTES).map((storage) => `torch.${storage}`),
  ])
  const approved = new Set<PickleGlobal>()
  const refuse = () => new BerthError('pytorch_invalid', 'refused by the hook')
  const hooks: UnpickleHooks = {
    allowGlobal: (global) => {
      assert.ok(global instanceof PickleGlobal)
      if (!allowed.has(global.qualifiedName)) return false
      approved.add(global)
      return true
    },
    reduce: (global, args) => {
      assert.ok(approved.has(global), `reduce called on ${global.qualifiedName}, never approved`)
      assert.ok(Array.isArray(args))
      if (global.qualifiedName === 'collections.OrderedDict') return new Map()
      if (global.qualifiedName === 'torch._utils._rebuild_tensor_v2') return { tensor: args }
      throw refuse()
    },
    build: (target) => {
      if (target instanceof Map) return target
      throw refuse()
    },
    persistentLoad: (pid) => ({ storage: pid }),
  }
  return hooks
}

/** Many elements appended at once: MARK, `n` times NONE, APPENDS. */
const bulkAppend = (n: number) =>
  named(
    `bulkAppend(${n})`,
    Buffer.concat([
      pickle.proto(2),
      pickle.emptyList,
      pickle.mark,
      Buffer.alloc(n, 0x4e),
      pickle.appends,
      pickle.stop,
    ]),
  )

/** `bytes`, shown in a counterexample as `name` rather than as 200k numbers. */
function named(name: string, bytes: Uint8Array): Uint8Array {
  return Object.assign(new Uint8Array(bytes), { [fc.toStringMethod]: () => name })
}

/**
 * A dict of `levels` dicts, each holding the one below under two keys: a few bytes per level,
 * twice as many paths to walk per level.
 */
function sharedDicts(levels: number): Uint8Array {
  const parts = [pickle.proto(2), pickle.emptyDict, pickle.binPut(0)]
  for (let i = 1; i <= levels; i++) {
    parts.push(
      pickle.emptyDict,
      pickle.mark,
      pickle.string('a'),
      pickle.longBinGet(i - 1),
      pickle.string('b'),
      pickle.longBinGet(i - 1),
      pickle.setItems,
      pickle.longBinPut(i),
    )
  }
  parts.push(pickle.stop)
  return named(`sharedDicts(${levels})`, Buffer.concat(parts))
}

/** A dict that holds itself. */
const selfHolding = new Uint8Array(
  Buffer.concat([
    pickle.proto(2),
    pickle.emptyDict,
    pickle.binPut(0),
    pickle.string('me'),
    pickle.binGet(0),
    pickle.setItem,
    pickle.stop,
  ]),
)

describe('safe unpickler properties', () => {
  it('reads every valid state_dict pickle to its tensors', () => {
    fc.assert(
      fc.property(validStateDict, (tensors) => {
        const root = unpickle(stateDictPickle(tensors), spyHooks())
        assert.ok(root instanceof Map)
        assert.deepEqual([...root.keys()], Object.keys(tensors))
      }),
      runs(200),
    )
  })

  it('answers damaged pickles and random programs with a value or a 400, running nothing unapproved', () => {
    fc.assert(
      fc.property(fc.oneof(hostileBytes(validPickle), program), (bytes) => {
        withinMs(1000, () => parsedOrRefused(() => unpickle(bytes, spyHooks()), CODES))
      }),
      // Found by this property: APPENDS spread its items as call arguments, and a pickle of
      // 200k NONEs overflowed the stack.
      { ...runs(1000), examples: [[bulkAppend(200_000)]] },
    )
  })

  it('refuses lengths the pickle only declares, without allocating them', async () => {
    // BINUNICODE, BINBYTES (u32 length); BINUNICODE8, BINBYTES8 (u64); LONG4 (u32 byte count).
    const opcodes = [
      [0x58, 4],
      [0x42, 4],
      [0x8d, 8],
      [0x8e, 8],
      [0x8b, 4],
    ] as const
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(...opcodes)
          .chain(([opcode, width]) =>
            fc.tuple(
              fc.constant(opcode),
              fc.constant(width),
              fc.bigInt({ min: 65n, max: 2n ** BigInt(8 * width) - 1n }),
            ),
          ),
        fc.uint8Array({ maxLength: 64 }),
        async ([opcode, width, length], rest) => {
          fc.pre(length > BigInt(rest.length))
          const bytes = Buffer.concat([
            pickle.proto(2),
            Buffer.from([opcode]),
            uintLE(length, width),
            rest,
          ])
          await allocatesUnder(16 * 1024 * 1024, () => {
            assert.equal(
              parsedOrRefused(() => unpickle(bytes, spyHooks()), CODES),
              undefined,
            )
          })
        },
      ),
      runs(200),
    )
  })

  it('refuses every global outside the allowlist by name, before anything could call it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...GLOBALS.slice(4)),
        fc.boolean(),
        fc.array(fc.constantFrom(pickle.none, pickle.int(1), pickle.string('x')), { maxLength: 3 }),
        ([module, name], stacked, args) => {
          const named = stacked
            ? Buffer.concat([pickle.string(module), pickle.string(name), pickle.stackGlobal])
            : pickle.global(module, name)
          const bytes = Buffer.concat([
            pickle.proto(2),
            named,
            pickle.mark,
            ...args,
            pickle.tuple,
            pickle.reduce,
            pickle.stop,
          ])
          assert.throws(
            () => unpickle(bytes, spyHooks()),
            (err) => {
              assert.deepEqual(err, unsafePickle(`${module}.${name}`))
              return true
            },
          )
        },
      ),
      runs(100),
    )
  })
})

describe('torch checkpoint properties', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  let n = 0
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  /** A checkpoint zip around `pickled`, with the storages every sample refers to. */
  async function read(pickled: Uint8Array) {
    const path = join(dir.path, `c${n++}.pt`)
    const storages = Object.fromEntries(
      STORAGE_KEYS.map((k) => [`archive/data/${k}`, new Uint8Array(STORAGE_BYTES)]),
    )
    await writeFile(path, zipStored({ 'archive/data.pkl': pickled, ...storages }))
    return parsedOrRefusedAsync(() => readTorchCheckpoint(path, 'model.pt'), CODES)
  }

  it('lists the tensors of every valid checkpoint exactly', async () => {
    await fc.assert(
      fc.asyncProperty(validStateDict, async (tensors) => {
        const checkpoint = await read(stateDictPickle(tensors))
        assert.deepEqual(checkpoint, {
          kind: 'state_dict',
          tensors: Object.entries(tensors).map(([name, t]) => ({
            name,
            dtype: DTYPES[t.storage],
            shape: t.shape,
            stride: t.stride,
            storageOffset: t.offset,
            storageEntry: `archive/data/${t.key}`,
          })),
        })
      }),
      runs(100, 5000),
    )
  })

  it('answers damaged and random pickles with a checkpoint or a 400, in bounded time', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(hostileBytes(validPickle), program), async (pickled) => {
        const start = performance.now()
        await read(pickled)
        const took = performance.now() - start
        assert.ok(took < 2000, `took ${took.toFixed(0)} ms`)
      }),
      // Found by this property's examples: dicts shared under two keys per level made the tensor
      // walk exponential (2^levels), and a dict holding itself recursed until the stack ran out.
      { ...runs(300, 5000), examples: [[sharedDicts(26)], [selfHolding]] },
    )
  })
})
