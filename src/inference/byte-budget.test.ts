import assert from 'node:assert/strict'
import { it } from 'node:test'
import { ByteBudget } from './byte-budget.js'

it('holds bytes up to its capacity, lets one taker through alone, and takes releases once', () => {
  const budget = new ByteBudget(100)
  const a = budget.tryTake(60)
  assert.ok(a)
  assert.equal(budget.tryTake(41), undefined)
  const b = budget.tryTake(40)
  assert.ok(b)
  assert.equal(budget.held, 100)
  a()
  a()
  assert.equal(budget.held, 40)
  b()
  assert.equal(budget.held, 0)
  // More than the whole capacity, with nothing held: a bound on what is held at once, not a
  // refusal of every large request.
  const big = budget.tryTake(500)
  assert.ok(big)
  assert.equal(budget.tryTake(1), undefined)
  big()
  assert.equal(budget.held, 0)
})
