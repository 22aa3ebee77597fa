import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runAdminCommand } from '../helpers/admin.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

const NAMES = ['prod-search', 'prod-vision', 'Staging', 'dev-one', 'dev-two']

/** Mixpeek's namespace list query, rename (PATCH, PUT). */
describe('namespace queries and updates', () => {
  let t: TestApp
  let rivalKey: string
  const ids = new Map<string, string>()
  const list = (body: unknown, query = '', key = BOOTSTRAP_KEY) =>
    t.request({ method: 'POST', url: `/v1/namespaces/list${query}`, key, body })
  const names = (res: { json(): { results: { namespace_name: string }[] } }) =>
    res.json().results.map((n) => n.namespace_name)

  before(async () => {
    t = await startTestApp()
    for (const [i, name] of NAMES.entries()) {
      const res = await t.request({
        method: 'POST',
        url: '/v1/namespaces',
        key: BOOTSTRAP_KEY,
        body: { namespace_name: name, description: i === 3 ? 'Playground for experiments' : null },
      })
      ids.set(name, res.json().namespace_id)
    }
    await runAdminCommand(['org', 'create', 'rival', '--tier', 'enterprise'], t.config)
    rivalKey = String(
      (await runAdminCommand(['key', 'create', '--org', 'rival'], t.config)).api_key,
    )
  })
  after(() => t.close())

  it('lists every namespace oldest first with Mixpeek pagination, for no body at all', async () => {
    const res = await list(undefined)
    assert.equal(res.statusCode, 200, res.body)
    const answer = res.json()
    assert.deepEqual(names(res), NAMES)
    assert.equal(answer.total_count, NAMES.length)
    assert.equal(answer.pagination.total, NAMES.length)
    assert.equal(answer.pagination.has_more, false)
    assert.equal(answer.pagination.next_cursor, null)
    assert.equal(answer.stats, null)
    assert.equal((await list(undefined, '', rivalKey)).json().total_count, 0)
  })

  it('filters by value and operators, case-insensitively unless told', async () => {
    const cases: [unknown, string[]][] = [
      [{ filters: { namespace_name: 'staging' } }, ['Staging']],
      [{ filters: { namespace_name: 'staging' }, case_sensitive: true }, []],
      [{ filters: { namespace_id: ids.get('dev-one') } }, ['dev-one']],
      [{ filters: { namespace_name: { $regex: '^prod' } } }, ['prod-search', 'prod-vision']],
      [{ filters: { namespace_name: { $regex: '^PROD' } }, case_sensitive: true }, []],
      [
        { filters: { namespace_name: { $in: ['dev-one', 'dev-two', 'nope'] } } },
        ['dev-one', 'dev-two'],
      ],
      [{ filters: { namespace_name: { $regex: '^dev', $ne: 'dev-two' } } }, ['dev-one']],
      [{ filters: { namespace_name: { $nin: NAMES.slice(1) } } }, ['prod-search']],
      [{ search: 'EXPERIMENT' }, ['dev-one']],
      [{ search: ids.get('Staging')?.slice(0, 12) }, ['Staging']],
      [
        { sort: { field: 'namespace_name', direction: 'desc' } },
        ['Staging', 'prod-vision', 'prod-search', 'dev-two', 'dev-one'],
      ],
    ]
    for (const [body, want] of cases) {
      const res = await list(body)
      assert.equal(res.statusCode, 200, `${JSON.stringify(body)}: ${res.body}`)
      assert.deepEqual(names(res), want, JSON.stringify(body))
      assert.equal(res.json().total_count, want.length)
    }
  })

  it('pages by limit and offset or by cursor', async () => {
    const first = await list({}, '?limit=2')
    assert.deepEqual(names(first), NAMES.slice(0, 2))
    const { pagination } = first.json()
    assert.equal(pagination.has_more, true)
    assert.equal(pagination.total_pages, 3)
    assert.equal(pagination.page, 1)
    assert.equal(pagination.previous_page, null)
    const second = await list({}, `?limit=2&cursor=${pagination.next_cursor}`)
    assert.deepEqual(names(second), NAMES.slice(2, 4))
    assert.equal(second.json().pagination.page, 2)
    const last = await list({}, '?limit=2&offset=4')
    assert.deepEqual(names(last), NAMES.slice(4))
    assert.equal(last.json().pagination.has_more, false)
    assert.equal(last.json().total_count, NAMES.length)
  })

  it('refuses unknown fields and operators, bad cursors, and patterns RE2 does not take', async () => {
    for (const [body, query] of [
      [{ filters: { owner: 'me' } }, ''],
      [{ filters: { namespace_name: { $gt: 'a' } } }, ''],
      [{ filters: { namespace_name: { $regex: '(a)\\1' } } }, ''],
      [{ sort: { field: 'size' } }, ''],
      [{ sort: { direction: 'up' } }, ''],
      [{}, '?cursor=nonsense'],
    ] as const) {
      const res = await list(body, query)
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)}${query}: ${res.body}`)
      assert.equal(res.json().error.code, 'namespace_query_invalid')
    }
    assert.equal((await list({}, '?limit=0')).statusCode, 422)
    const many = await list({ filters: { namespace_name: { $in: Array(1001).fill('x') } } })
    assert.equal(many.statusCode, 400)
    assert.equal(many.json().error.code, 'namespace_query_invalid')
    // A sort field nested 100,000 deep is refused, not printed (String() of it overflows).
    const deep = await t.request({
      method: 'POST',
      url: '/v1/namespaces/list',
      key: BOOTSTRAP_KEY,
      body: `{"sort": {"field": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(deep.statusCode, 400, deep.body)
    assert.equal(deep.json().error.code, 'namespace_query_invalid')
    // A pattern that takes a backtracking engine exponential time answers at once.
    const evil = await list({ filters: { namespace_name: { $regex: '^(a+)+$' } } })
    assert.equal(evil.statusCode, 200)
  })

  it('renames with PATCH and PUT, changes the description, refuses a taken name', async () => {
    const id = ids.get('dev-two') as string
    const patch = (body: unknown, method: 'PATCH' | 'PUT' = 'PATCH', key = BOOTSTRAP_KEY) =>
      t.request({ method, url: `/v1/namespaces/${id}`, key, body })
    const renamed = await patch({ namespace_name: 'dev-2', description: 'second playground' })
    assert.equal(renamed.statusCode, 200, renamed.body)
    assert.equal(renamed.json().namespace_name, 'dev-2')
    assert.equal(renamed.json().description, 'second playground')
    assert.ok(renamed.json().updated_at > renamed.json().created_at)
    const got = await t.request({ method: 'GET', url: '/v1/namespaces/dev-2', key: BOOTSTRAP_KEY })
    assert.equal(got.json().namespace_id, id)

    // null is "not given": the description stays.
    const put = await patch({ namespace_name: 'dev-two', payload_indexes: null }, 'PUT')
    assert.equal(put.statusCode, 200, put.body)
    assert.equal(put.json().namespace_name, 'dev-two')
    assert.equal(put.json().description, 'second playground')

    const taken = await patch({ namespace_name: 'Staging' })
    assert.equal(taken.statusCode, 409)
    assert.equal(taken.json().error.code, 'namespace_name_taken')
    assert.equal((await patch({ namespace_name: 'ns_sneaky' })).statusCode, 422)
    const stranger = await patch({ namespace_name: 'stolen' }, 'PATCH', rivalKey)
    assert.equal(stranger.statusCode, 404)
    assert.equal(stranger.json().error.code, 'namespace_not_found')
  })
})
