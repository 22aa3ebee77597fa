import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type Browser, chromium, type Page } from 'playwright-core'
import { mlpModel, referenceMlp } from '../fixtures/onnx-models.js'
import { tarGzOf } from '../fixtures/tar-builder.js'
import { assertClose } from '../helpers/inference.js'
import { listenLocally } from '../helpers/raw-http.js'
import { REPO_ROOT } from '../helpers/repo.js'
import { BOOTSTRAP_KEY, startTestApp, type TestApp } from '../helpers/test-app.js'

// The page's globals that the functions run in it use (Playwright runs them in the browser;
// the tests compile without the DOM's types, so these say what little is used of them).
declare const document: {
  querySelector(selector: string): {
    readonly value: number
    readonly max: number
    getAttribute(name: string): string | null
    dispatchEvent(event: DragEvent): boolean
  } | null
}
declare class File {
  constructor(parts: string[], name: string)
}
declare class DataTransfer {
  readonly items: { add(file: File): void }
}
declare class DragEvent {
  constructor(type: string, init: { dataTransfer: DataTransfer; bubbles: boolean })
}

/** Debian's chromium (apt-get install chromium), or BERTH_TEST_CHROMIUM. */
const CHROMIUM = process.env.BERTH_TEST_CHROMIUM ?? '/usr/bin/chromium'
/** Where the screenshots go: kept after the run, looked at when a step fails. */
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'console')

/**
 * Why the browser tests cannot run here, or `undefined`. CI sets BERTH_TEST_REQUIRE_BROWSER=1, so
 * a missing chromium fails there instead of skipping.
 */
function browserSkipReason(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  const reason = `no chromium at ${CHROMIUM} (apt-get install chromium, or set BERTH_TEST_CHROMIUM)`
  if (process.env.BERTH_TEST_REQUIRE_BROWSER === '1')
    throw new Error(`a browser is required: ${reason}`)
  console.warn(`SKIPPING the console tests: ${reason}`)
  return reason
}

const X = [0.5, -1, 2, 0.25]
const HIDDEN = 65_536

/**
 * The web console in a real browser against a real server: sign-in, upload with progress,
 * deployment followed live, try-it, redeploy and undeploy, charts, and an error from the
 * server shown to the user. Each step runs on from the page the one before left.
 */
describe('the web console in Chromium', { skip: browserSkipReason() }, () => {
  let t: TestApp
  let browser: Browser
  let page: Page
  let base: string
  const refusals: string[] = []

  before(async () => {
    t = await startTestApp({ BERTH_SPARE_RUNNERS: '0' })
    base = `http://127.0.0.1:${await listenLocally(t)}`
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
    page.on('dialog', (dialog) => void dialog.accept())
    // What the page's own policy refused (a script, a style, a call): none, or the policy broke it.
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) refusals.push(message.text())
    })
    await mkdir(SHOTS, { recursive: true })
  })
  after(async () => {
    await browser?.close()
    await t?.close()
  })

  /** Runs `body`; on a failure keeps a screenshot of the page as it was, then fails. */
  const step = (name: string, body: () => Promise<void>) =>
    it(name, async () => {
      try {
        await body()
      } catch (err) {
        const file = join(SHOTS, `failed-${name.replace(/[^a-z0-9]+/gi, '-')}.png`)
        await page.screenshot({ path: file, fullPage: true }).catch(() => undefined)
        throw Object.assign(err as Error, { screenshot: file })
      }
    })

  step('is served at /console under a strict CSP, and refuses a wrong key', async () => {
    const answer = await page.goto(`${base}/console`)
    assert.equal(page.url(), `${base}/console/`)
    assert.match(answer?.headers()['content-security-policy'] ?? '', /script-src 'self'/)
    await page.fill('input[name=api_key]', 'sk_not_a_key_of_this_server_000000')
    await page.click('button[type=submit]')
    const alert = page.getByRole('alert')
    await alert.waitFor()
    assert.match((await alert.textContent()) ?? '', /refused.*api_key_invalid/s)
  })

  step('signs in, shows node capacity and creates a namespace', async () => {
    await page.fill('input[name=api_key]', BOOTSTRAP_KEY)
    await page.click('button[type=submit]')
    await page.getByText('Sign out').waitFor()
    await page.locator('header .node', { hasText: 'CPUs' }).waitFor()
    await page.fill('input[name=namespace_name]', 'vision')
    await page.click('form.inline button[type=submit]')
    await page.locator('h2', { hasText: 'vision' }).waitFor()
  })

  step(
    'uploads with a progress bar, and the table shows it deployed without a reload',
    async () => {
      // An MLP of about 1.8 MiB: the bar has bytes to count.
      const archive = await tarGzOf({ 'model.onnx': mlpModel(4, HIDDEN, 3, 7) })
      await page.setInputFiles('input[name=file]', {
        name: 'mlp.tar.gz',
        mimeType: 'application/gzip',
        buffer: archive,
      })
      assert.equal(await page.inputValue('input[name=name]'), 'mlp')
      await page.fill('input[name=memory_gb]', '0.5')
      await page.click('button:has-text("Upload and deploy")')
      const bar = page.getByRole('progressbar', { name: 'Upload progress' })
      await page.waitForFunction(() => {
        const p = document.querySelector('progress')
        return p !== null && p.value > 0 && p.value === p.max
      })
      // The whole form is counted: the archive and the fields around it.
      const sent = Number(await bar.getAttribute('max'))
      assert.ok(sent > archive.length && sent < archive.length + 4096, `${sent} bytes sent`)
      assert.match(
        (await page.locator('.progress .figures').textContent()) ?? '',
        /MiB of .*MiB · .*\/s/,
      )
      await page.locator('.status', { hasText: 'Uploaded mlp_1_0_0' }).waitFor()
      const row = page.locator('tr[data-model=mlp_1_0_0]')
      await row.locator('.state-deployed').waitFor({ timeout: 60_000 })
      assert.match((await row.textContent()) ?? '', /onnx/)
      assert.match((await row.textContent()) ?? '', /1 CPU · 512 MiB/)
      await page.screenshot({ path: join(SHOTS, 'deployed.png'), fullPage: true })
    },
  )

  step('runs the model from the try-it panel and shows the answer and latency', async () => {
    const panel = page.locator('[data-model-panel=mlp_1_0_0]')
    const template = JSON.parse(await panel.locator('textarea[name=tensors]').inputValue())
    // Made from the model's signature: its dynamic batch as 1.
    assert.deepEqual(template.inputs[0].shape, [1, 4])
    template.inputs[0].data = X
    await panel.locator('textarea[name=tensors]').fill(JSON.stringify(template))
    await panel.locator('button:has-text("Run")').click()
    const answer = JSON.parse((await panel.locator('.answer pre').textContent()) ?? '')
    assertClose(answer.outputs[0].data, referenceMlp(X, 1, 4, HIDDEN, 3, 7), 1e-3)
    assert.match((await panel.locator('.latency').textContent()) ?? '', /Answered in [\d.]+ ms/)
    await page.screenshot({ path: join(SHOTS, 'answered.png'), fullPage: true })
  })

  step("counts the request in the charts' data, and draws the four charts", async () => {
    // The charts refresh every 10 s.
    const charts = page.locator('.charts')
    await page.waitForFunction(
      () => Number(document.querySelector('.charts')?.getAttribute('data-requests')) >= 1,
      undefined,
      { timeout: 20_000 },
    )
    assert.equal(await charts.locator('canvas').count(), 4)
  })

  step('redeploys with new settings and undeploys', async () => {
    const panel = page.locator('[data-model-panel=mlp_1_0_0]')
    await panel.locator('input[name=replicas]').fill('2')
    await panel.locator('button:has-text("Redeploy")').click()
    const row = page.locator('tr[data-model=mlp_1_0_0]')
    await row.locator('td', { hasText: /^2 \/ 2$/ }).waitFor({ timeout: 60_000 })
    await panel.locator('button:has-text("Undeploy")').click()
    await row.locator('.state-not_deployed').waitFor({ timeout: 30_000 })
  })

  step('shows an error the server answers, with its code', async () => {
    // Dropped on the drop zone as a user would drag it there.
    await page.evaluate(() => {
      const transfer = new DataTransfer()
      transfer.items.add(new File(['not a gzip stream'], 'broken.tar.gz'))
      document
        .querySelector('label.drop')
        ?.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }))
    })
    assert.equal(await page.inputValue('input[name=name]'), 'broken')
    await page.click('button:has-text("Upload and deploy")')
    const banner = page.locator('.banner[role=alert]')
    await banner.waitFor()
    assert.match((await banner.textContent()) ?? '', /archive_not_gzip/)
    await page.screenshot({ path: join(SHOTS, 'error.png'), fullPage: true })
  })

  step('broke no rule of its own Content Security Policy', async () => {
    assert.deepEqual(refusals, [])
  })
})
