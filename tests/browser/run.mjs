// Browser scenarios for tests/api/browser.rs: Debian's headless chromium, driven by
// playwright-core, with every host but the server blocked.
//
// usage: node run.mjs <scenario> <base URL> [bearer token]
// Prints JSON lines: `{"wait": "..."}` when it needs the test to change the world (it then
// reads one line from stdin), and a last line `{"ok": true, ...}` or `{"ok": false, "error"}`.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const [scenario, base, token] = process.argv.slice(2);
const host = new URL(base).host;
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const T = 20_000;

const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function waitFor(what) {
  console.log(JSON.stringify({ wait: what }));
  await lines.next();
}

const browser = await chromium.launch({
  executablePath,
  args: ['--no-sandbox', '--disable-dev-shm-usage', `--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE ${new URL(base).hostname}`],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const foreign = [];
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  if (url.host === host || url.protocol === 'data:') return route.continue();
  foreign.push(url.href);
  return route.abort();
});
if (token) {
  await context.addInitScript((t) => localStorage.setItem('idp-graph.token', t), token);
}
const page = await context.newPage();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
const wsFrames = { next: 0 };
if (process.env.DEBUG) { page.on('response', (r) => r.status() >= 400 && console.error('HTTP', r.status(), r.url(), r.request().postData()?.slice(0, 200))); }
page.on('websocket', (ws) =>
  ws.on('framereceived', (f) => {
    try {
      if (JSON.parse(f.payload).type === 'next') wsFrames.next++;
    } catch {}
  }),
);

const text = (sel) => page.locator(sel).first().innerText({ timeout: T });
const texts = (sel) => page.locator(sel).allInnerTexts();

const scenarios = {
  async playground() {
    const response = await page.goto(`${base}/`);
    const csp = response.headers()['content-security-policy'] ?? '';
    await page.waitForSelector('.graphiql-container', { timeout: T });
    // The first tab: the service-page query.
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => document.querySelector('.result-window')?.innerText.includes('"sample-app"'), null, { timeout: T });
    const query = await text('.result-window');
    // The third tab: a live subscription with `initial: true`.
    const tabs = page.locator('.graphiql-tab');
    const tabCount = await tabs.count();
    await tabs.nth(2).click();
    await page.click('.graphiql-execute-button');
    const deadline = Date.now() + T;
    while (wsFrames.next < 2 && Date.now() < deadline) await page.waitForTimeout(50);
    const live = await text('.result-window');
    return { csp, tabCount, queryHasData: query.includes('"component:default/sample-app"'), subscriptionEvents: wsFrames.next, liveShowsEvent: live.includes('"applicationEvents"') };
  },

  async catalog() {
    await page.goto(`${base}/ui`);
    await page.waitForSelector('table[data-table=catalog] tr[data-ref]', { timeout: T });
    const rows = async () =>
      page.$$eval('tr[data-ref]', (trs) =>
        trs.map((tr) => ({
          ref: tr.dataset.ref,
          owner: tr.children[2].innerText,
          badges: [...tr.querySelectorAll('.app')].map((a) => ({
            app: a.dataset.app,
            sync: a.querySelector('[data-badge=sync]')?.dataset.value,
            health: a.querySelector('[data-badge=health]')?.dataset.value,
          })),
        })),
      );
    const all = await rows();
    await page.selectOption('select[aria-label=owner]', 'platform-team');
    const platform = await rows();
    await page.fill('input[aria-label=filter]', 'nginx');
    const text = await rows();
    return { all, platform, text, url: page.url() };
  },

  async service() {
    await page.goto(`${base}/ui/entity/component/default/sample-app`);
    for (const c of ['overview', 'argocd', 'kubernetes', 'github']) {
      await page.waitForSelector(`[data-card=${c}]`, { timeout: T });
    }
    await page.waitForSelector('[data-status=live]', { timeout: T });
    return {
      cards: await texts('[data-card] h2'),
      owner: await text('[data-field=owner]'),
      system: await text('[data-field=system]'),
      repository: await text('[data-field=repository]'),
      revision: await text('[data-card=argocd] [data-field=revision]'),
      sync: await page.getAttribute('[data-card=argocd] [data-badge=sync]', 'data-value'),
      health: await page.getAttribute('[data-card=argocd] [data-badge=health]', 'data-value'),
      history: await page.locator('[data-card=argocd] tr[data-history]').count(),
      deployments: await page.$$eval('[data-deployment]', (ds) => ds.map((d) => d.dataset.deployment)),
      rollout: await text('[data-card=kubernetes] [data-field=rollout]'),
      pods: await page.locator('[data-card=kubernetes] tr[data-pod]').count(),
      prs: await page.$$eval('[data-pr]', (ps) => ps.map((p) => Number(p.dataset.pr))),
      runs: await page.locator('[data-run]').count(),
      actions: await page.$$eval('[data-action]', (bs) => bs.map((b) => b.dataset.action)),
    };
  },

  async sync() {
    await page.goto(`${base}/ui/entity/component/default/sample-app`);
    await page.waitForSelector('[data-card=argocd] [data-action=sync]', { timeout: T });
    await page.waitForSelector('[data-status=live]', { timeout: T });
    await page.evaluate(() => { window.__sameDocument = true; });
    const before = await page.locator('[data-card=argocd] tr[data-history]').count();
    await page.click('[data-card=argocd] [data-action=sync]');
    await page.waitForSelector('[data-confirm=sync]', { timeout: T });
    await page.click('[data-confirm=sync] [data-confirm-yes]');
    // The card changes by itself: the operation runs, then history grows.
    const phases = new Set();
    const deadline = Date.now() + T;
    let after = before;
    while (Date.now() < deadline) {
      const p = await page.getAttribute('[data-card=argocd] [data-badge=operation]', 'data-value').catch(() => null);
      if (p) phases.add(p);
      after = await page.locator('[data-card=argocd] tr[data-history]').count();
      if (after > before && p === 'SUCCEEDED') break;
      await page.waitForTimeout(50);
    }
    return {
      before,
      after,
      phases: [...phases],
      result: await text('[data-result=sync]'),
      sameDocument: await page.evaluate(() => window.__sameDocument === true),
    };
  },

  async template() {
    await page.goto(`${base}/ui/create`);
    await page.click('[data-template="template:default/service-template"]', { timeout: T });
    // Required and pattern checks happen before anything is sent.
    await page.fill('input[name=name]', 'Not Valid');
    await page.click('button[type=submit]');
    const invalid = await page.locator('[data-invalid=name]').count();
    await page.fill('input[name=name]', 'browser-svc');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-done]', { timeout: T });
    const done = await page.getAttribute('[data-done]', 'data-done');
    const log = await text('[data-log]');
    await page.waitForSelector('[data-link=repository]', { timeout: T });
    await page.waitForSelector('[data-link=application]', { timeout: T });
    await page.click('[data-link=entity]');
    await page.waitForSelector('[data-entity="component:default/browser-svc"] [data-card=argocd] [data-app=browser-svc]', { timeout: T });
    return { invalid, done, logLines: log.split('\n').filter(Boolean).length, url: page.url(), title: await text('.title h1') };
  },

  async reconnect() {
    await page.goto(`${base}/ui/entity/component/default/sample-app`);
    await page.waitForSelector('[data-status=live]', { timeout: T });
    const before = await page.getAttribute('[data-card=argocd] [data-badge=health]', 'data-value');
    await page.evaluate(() => { window.__sameDocument = true; });
    // The network goes away and the socket with it.
    await context.setOffline(true);
    await page.evaluate(() => window.__idpDropConnection());
    await page.waitForSelector('[data-status=reconnecting]', { timeout: T });
    await waitFor('offline: change the world now');
    await context.setOffline(false);
    await page.waitForSelector('[data-card=argocd] [data-app=sample-app] [data-badge=health][data-value=DEGRADED]', { timeout: T });
    await page.waitForSelector('[data-status=live]', { timeout: T });
    return { before, after: 'DEGRADED', sameDocument: await page.evaluate(() => window.__sameDocument === true) };
  },

  async screenshot() {
    await page.goto(`${base}/ui/entity/component/default/sample-app`);
    await page.waitForSelector('[data-card=github] [data-pr]', { timeout: T });
    await page.waitForSelector('[data-status=live]', { timeout: T });
    await page.screenshot({ path: process.env.SCREENSHOT ?? 'service-page.png', fullPage: true });
    return {};
  },
};

let result;
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  result = { ok: true, ...(await scenarios[scenario]()), foreign, errors };
} catch (e) {
  result = { ok: false, error: String(e?.message ?? e), foreign, errors };
}
console.log(JSON.stringify(result));
await browser.close();
process.exit(0);
