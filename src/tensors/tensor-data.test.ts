import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type FixedDatatype, ITEM_BYTES, isDatatype, isFixedDatatype } from './tensor.js'
import {
  encodeStrings,
  encodeValues,
  flatten,
  fromHalf,
  isFramed,
  toHalf,
  valuesAsJson,
} from './tensor-data.js'

describe('tensor data', () => {
  it('round-trips every datatype through bytes and back to JSON', () => {
    const cases: ReadonlyArray<readonly [FixedDatatype, unknown[], string]> = [
      ['BOOL', [true, false, 1, 0], '[true,false,true,false]'],
      ['UINT8', [0, 255], '[0,255]'],
      ['UINT16', [0, 65535], '[0,65535]'],
      ['UINT32', [0, 4294967295], '[0,4294967295]'],
      ['UINT64', [0, '18446744073709551615'], '[0,18446744073709551615]'],
      ['INT8', [-128, 127], '[-128,127]'],
      ['INT16', [-32768, 32767], '[-32768,32767]'],
      ['INT32', [-2147483648, 2147483647], '[-2147483648,2147483647]'],
      [
        'INT64',
        [-9007199254740991, '-9223372036854775808'],
        '[-9007199254740991,-9223372036854775808]',
      ],
      ['FP16', [1, -2.5, 65504, 0.0001], '[1,-2.5,65504,0.00010001659393310547]'],
      ['FP32', [0.5, -1e30], '[0.5,-1.0000000150474662e+30]'],
      ['FP64', [0.1, -1e300], '[0.1,-1e+300]'],
    ]
    for (const [datatype, values, json] of cases) {
      const bytes = encodeValues(datatype, values)
      assert.ok(bytes instanceof Uint8Array, datatype)
      assert.equal(bytes.byteLength, values.length * ITEM_BYTES[datatype], datatype)
      assert.equal(valuesAsJson(datatype, bytes), json, datatype)
    }
  })

  it('refuses values that are not of the datatype, naming the element', () => {
    const bad: ReadonlyArray<readonly [string, unknown[]]> = [
      ['INT32', [1, 2.5]],
      ['INT8', [128]],
      ['UINT8', [-1]],
      ['INT64', [2 ** 60]],
      ['INT64', ['12a']],
      ['UINT64', ['-1']],
      ['FP32', ['1']],
      ['BOOL', [2]],
      ['BYTES', ['text']],
    ]
    for (const [datatype, values] of bad) {
      const result = encodeValues(datatype, values)
      assert.equal(typeof result, 'string', `${datatype} ${JSON.stringify(values)}`)
    }
    assert.match(String(encodeValues('INT32', [1, 2.5])), /element 1/)
  })

  it('converts half precision exactly where it can, with IEEE rounding and specials', () => {
    for (const x of [0, 1, -1, 0.5, 2 ** -14, 2 ** -24, 65504, 1024.5]) {
      assert.equal(fromHalf(toHalf(x)), x === 1024.5 ? 1024 : x, String(x))
    }
    assert.equal(toHalf(65520), 0x7c00, 'overflow → infinity')
    assert.ok(Number.isNaN(fromHalf(toHalf(Number.NaN))))
    assert.equal(fromHalf(toHalf(-Infinity)), -Infinity)
    assert.equal(valuesAsJson('FP32', new Uint8Array(Float32Array.of(Number.NaN).buffer)), '[null]')
  })

  it('flattens nested row-major data', () => {
    assert.deepEqual(
      flatten([
        [1, 2],
        [3, [4]],
      ]),
      [1, 2, 3, 4],
    )
    assert.deepEqual(flatten([1, 2]), [1, 2])
  })

  it('takes only own datatype names: prototype keys are not datatypes', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'fp32']) {
      assert.equal(isDatatype(name), false, name)
      assert.equal(isFixedDatatype(name), false, name)
      assert.equal(encodeValues(name, [1]), `datatype ${name} is not supported`)
    }
    assert.equal(isDatatype('BYTES'), true)
    assert.equal(isFixedDatatype('BYTES'), false)
    assert.equal(isFixedDatatype('FP32'), true)
  })

  it('checks BYTES framing against a count without decoding', () => {
    const bytes = encodeStrings(['', 'é', 'three'])
    assert.equal(isFramed(bytes, 3), true)
    assert.equal(isFramed(new Uint8Array(), 0), true)
    for (const count of [0, 2, 4, -1, 0.5, 2 ** 53]) assert.equal(isFramed(bytes, count), false)
    assert.equal(isFramed(bytes.subarray(0, bytes.length - 1), 3), false, 'last element short')
    assert.equal(isFramed(Uint8Array.of(255, 255, 255, 255, 0), 1), false, 'length past the end')
    // A billion elements claimed in 8 bytes: refused by the count, not walked.
    assert.equal(isFramed(new Uint8Array(8), 1e9), false)
    // A view into a larger buffer: only its own bytes count.
    const inside = Buffer.concat([Buffer.from([9, 9]), bytes, Buffer.from([7])]).subarray(
      2,
      2 + bytes.length,
    )
    assert.equal(isFramed(inside, 3), true)
  })
})
