import { BerthError } from '../../errors/berth-error.js'

/**
 * A pickle reader that never runs pickle code. It interprets the opcodes itself; a GLOBAL can
 * only name something in the caller's allowlist, and a REDUCE can only call the caller's
 * handler for that name. Anything else stops the read with `UnsafePickleError` naming it.
 * Only the opcodes a tensor checkpoint uses are known; others are refused.
 */

/** `module.name` as named by a GLOBAL or STACK_GLOBAL opcode. */
export class PickleGlobal {
  readonly module: string
  readonly name: string

  constructor(module: string, name: string) {
    this.module = module
    this.name = name
  }

  get qualifiedName(): string {
    return `${this.module}.${this.name}`
  }
}

/** A pickle tuple (kept apart from lists). */
export class PickleTuple {
  readonly items: readonly unknown[]

  constructor(items: readonly unknown[]) {
    this.items = items
  }
}

/** `unsafe_pickle`, naming the global the pickle wanted. */
export function unsafePickle(global: string): BerthError {
  return new BerthError(
    'unsafe_pickle',
    `the pickle references ${global}, which is not a tensor type`,
    {
      details: { global },
    },
  )
}

function malformed(reason: string): BerthError {
  return new BerthError('pytorch_invalid', `the checkpoint's pickle is malformed: ${reason}`, {
    details: { reason },
  })
}

export interface UnpickleHooks {
  /** Whether a GLOBAL may name `module.name` at all. */
  readonly allowGlobal: (global: PickleGlobal) => boolean
  /** Calls an allowed global (REDUCE); throw to refuse the call. */
  readonly reduce: (global: PickleGlobal, args: readonly unknown[]) => unknown
  /** BUILD on an object made by `reduce`: may accept or refuse the state. */
  readonly build: (target: unknown, state: unknown) => unknown
  /** BINPERSID: turns a persistent id into an object (torch: a storage). */
  readonly persistentLoad: (pid: unknown) => unknown
}

const MAX_MEMO = 1_000_000
const MARK = Symbol('mark')

/** Reads one pickle from `bytes`; resolves the object STOP leaves on the stack. */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const stack: unknown[] = []
  const memo = new Map<number, unknown>()
  let pos = 0

  const need = (n: number): number => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      throw malformed('the pickle ends early')
    }
    const at = pos
    pos += n
    return at
  }
  const u8 = () => view.getUint8(need(1))
  const u16 = () => view.getUint16(need(2), true)
  const u32 = () => view.getUint32(need(4), true)
  const i32 = () => view.getInt32(need(4), true)
  const u64 = () => Number(view.getBigUint64(need(8), true))
  const text = (n: number) => {
    const at = need(n)
    try {
      return decoder.decode(bytes.subarray(at, at + n))
    } catch {
      throw malformed('a pickle string is not UTF-8')
    }
  }
  const line = () => {
    const end = bytes.indexOf(0x0a, pos)
    if (end < 0) throw malformed('the pickle ends early')
    const value = text(end - pos)
    pos += 1
    return value
  }
  const pop = (): unknown => {
    if (stack.length === 0) throw malformed('the pickle pops an empty stack')
    return stack.pop()
  }
  const top = (): unknown => {
    if (stack.length === 0) throw malformed('the pickle reads an empty stack')
    return stack[stack.length - 1]
  }
  const popMark = (): unknown[] => {
    const at = stack.lastIndexOf(MARK)
    if (at < 0) throw malformed('the pickle has no mark')
    const items = stack.splice(at)
    items.shift()
    return items
  }
  const remember = (index: number) => {
    if (memo.size >= MAX_MEMO && !memo.has(index)) throw malformed('the pickle memo is too large')
    memo.set(index, top())
  }
  const recall = (index: number) => {
    if (!memo.has(index)) throw malformed('the pickle reads an unset memo slot')
    stack.push(memo.get(index))
  }
  const global = (module: string, name: string) => {
    const ref = new PickleGlobal(module, name)
    if (!hooks.allowGlobal(ref)) throw unsafePickle(ref.qualifiedName)
    stack.push(ref)
  }
  const asList = (value: unknown): unknown[] => {
    if (!Array.isArray(value)) throw malformed('the pickle appends to a non-list')
    return value
  }
  const asDict = (value: unknown): Map<unknown, unknown> => {
    if (!(value instanceof Map)) throw malformed('the pickle sets an item on a non-dict')
    return value
  }
  const key = (value: unknown): unknown => {
    // Keys stay primitives, so a pickle can never shape a JS object's prototype.
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint')
      return value
    if (typeof value === 'boolean' || value === null) return value
    throw malformed('the pickle uses a non-primitive dict key')
  }

  for (;;) {
    const op = u8()
    switch (op) {
      case 0x80: // PROTO
        u8()
        break
      case 0x95: // FRAME
        u64()
        break
      case 0x2e: // STOP
        return pop()
      case 0x28: // MARK
        stack.push(MARK)
        break
      case 0x7d: // EMPTY_DICT
        stack.push(new Map())
        break
      case 0x5d: // EMPTY_LIST
        stack.push([])
        break
      case 0x29: // EMPTY_TUPLE
        stack.push(new PickleTuple([]))
        break
      case 0x4e: // NONE
        stack.push(null)
        break
      case 0x88: // NEWTRUE
        stack.push(true)
        break
      case 0x89: // NEWFALSE
        stack.push(false)
        break
      case 0x4a: // BININT
        stack.push(i32())
        break
      case 0x4b: // BININT1
        stack.push(u8())
        break
      case 0x4d: // BININT2
        stack.push(u16())
        break
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32()
        if (n > 64) throw malformed('the pickle holds an oversized integer')
        let value = 0n
        const at = need(n)
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[at + i] ?? 0)
        if (n > 0 && ((bytes[at + n - 1] ?? 0) & 0x80) !== 0) value -= 1n << BigInt(8 * n)
        stack.push(Number.isSafeInteger(Number(value)) ? Number(value) : value)
        break
      }
      case 0x47: // BINFLOAT
        stack.push(view.getFloat64(need(8), false))
        break
      case 0x58: // BINUNICODE
        stack.push(text(u32()))
        break
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()))
        break
      case 0x8d: // BINUNICODE8
        stack.push(text(u64()))
        break
      case 0x43: // SHORT_BINBYTES
      case 0x42: // BINBYTES
      case 0x8e: {
        // BINBYTES8
        const n = op === 0x43 ? u8() : op === 0x42 ? u32() : u64()
        const at = need(n)
        stack.push(bytes.slice(at, at + n))
        break
      }
      case 0x74: // TUPLE
        stack.push(new PickleTuple(popMark()))
        break
      case 0x85: // TUPLE1
        stack.push(new PickleTuple([pop()]))
        break
      case 0x86: {
        // TUPLE2
        const b = pop()
        stack.push(new PickleTuple([pop(), b]))
        break
      }
      case 0x87: {
        // TUPLE3
        const c = pop()
        const b = pop()
        stack.push(new PickleTuple([pop(), b, c]))
        break
      }
      case 0x6c: // LIST
        stack.push(popMark())
        break
      case 0x61: {
        // APPEND
        const value = pop()
        asList(top()).push(value)
        break
      }
      case 0x65: {
        // APPENDS
        const items = popMark()
        const list = asList(top())
        // One at a time: spread, a pickle's 200k items would overflow the call stack.
        for (const item of items) list.push(item)
        break
      }
      case 0x64: {
        // DICT
        const items = popMark()
        const dict = new Map<unknown, unknown>()
        for (let i = 0; i + 1 < items.length; i += 2) dict.set(key(items[i]), items[i + 1])
        stack.push(dict)
        break
      }
      case 0x73: {
        // SETITEM
        const value = pop()
        const k = pop()
        asDict(top()).set(key(k), value)
        break
      }
      case 0x75: {
        // SETITEMS
        const items = popMark()
        const dict = asDict(top())
        for (let i = 0; i + 1 < items.length; i += 2) dict.set(key(items[i]), items[i + 1])
        break
      }
      case 0x71: // BINPUT
        remember(u8())
        break
      case 0x72: // LONG_BINPUT
        remember(u32())
        break
      case 0x94: // MEMOIZE
        remember(memo.size)
        break
      case 0x68: // BINGET
        recall(u8())
        break
      case 0x6a: // LONG_BINGET
        recall(u32())
        break
      case 0x30: // POP
        pop()
        break
      case 0x31: // POP_MARK
        popMark()
        break
      case 0x32: // DUP
        stack.push(top())
        break
      case 0x63: {
        // GLOBAL
        const module = line()
        global(module, line())
        break
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop()
        const module = pop()
        if (typeof module !== 'string' || typeof name !== 'string') {
          throw malformed('the pickle names a global with non-strings')
        }
        global(module, name)
        break
      }
      case 0x52: {
        // REDUCE
        const args = pop()
        const callable = pop()
        if (!(callable instanceof PickleGlobal)) {
          throw malformed('the pickle calls something that is not a global')
        }
        if (!(args instanceof PickleTuple))
          throw malformed('the pickle calls with non-tuple arguments')
        stack.push(hooks.reduce(callable, args.items))
        break
      }
      case 0x62: {
        // BUILD
        const state = pop()
        stack.push(hooks.build(pop(), state))
        break
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()))
        break
      case 0x81: // NEWOBJ
      case 0x92: {
        // NEWOBJ_EX
        const cls = stack[stack.length - (op === 0x81 ? 2 : 3)]
        throw unsafePickle(
          cls instanceof PickleGlobal ? cls.qualifiedName : 'an object constructor',
        )
      }
      default:
        throw malformed(`the pickle uses opcode 0x${op.toString(16)}, which berth does not read`)
    }
  }
}
