// The idp-graph Backstage plugin in a real Backstage app (plugins/backstage/e2e-app, built
// with @backstage/cli, served by the real Backstage backend of tests/peers/backstage), in
// Debian's headless chromium driven by playwright-core. For tests/api/backstage_plugin.rs.
//
// usage: node backstage.mjs <Backstage URL> <idp-graph URL>
// env: CHROMIUM, SCREENSHOT (a PNG path: the entity page with the card, after the sync)
// Prints JSON lines: `{"wait": "...", ...}` when the test must act (then one line is read
// from stdin), and a last line `{"ok": true, ...}` or `{"ok": false, "error"}`.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const [base, graph] = process.argv.slice(2);
const allowed = new Set([new URL(base).host, new URL(graph).host]);
const T = 30_000;

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function waitFor(what, data = {}) {
  console.log(JSON.stringify({ wait: what, ...data }));
  await lines.next();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
const foreign = [];
await context.route('**/*', route => {
  const url = new URL(route.request().url());
  if (allowed.has(url.host) || url.protocol === 'data:') return route.continue();
  foreign.push(url.href);
  return route.abort();
});
const page = await context.newPage();
const errors = [];
page.on('pageerror', e => errors.push(e.message));
const graphRequests = { total: 0, withToken: 0, persisted: 0 };
page.on('request', r => {
  if (!r.url().startsWith(`${graph}/graphql`) || r.method() !== 'POST') return;
  graphRequests.total++;
  if ((r.headers().authorization ?? '').startsWith('Bearer ey')) graphRequests.withToken++;
  const body = r.postDataJSON?.() ?? {};
  if (body.extensions?.persistedQuery && !body.query) graphRequests.persisted++;
});
let wsInit;
page.on('websocket', ws => {
  ws.on('framesent', f => {
    try {
      const m = JSON.parse(f.payload);
      if (m.type === 'connection_init') wsInit = m.payload;
    } catch {}
  });
});

const card = '[data-idp-graph-card]';
const appSel = app => `${card} [data-app="${app}"]`;
const attr = (sel, a) => page.getAttribute(sel, a, { timeout: T });
const text = sel => page.locator(sel).first().innerText({ timeout: T });

/** Opens an entity page, signing in through the guest provider when asked. */
async function openEntity(name) {
  await page.goto(`${base}/catalog/default/component/${name}`);
  const enter = page.getByRole('button', { name: /enter/i });
  const first = await Promise.race([
    enter.waitFor({ timeout: T }).then(() => 'sign-in'),
    page.waitForSelector(card, { timeout: T }).then(() => 'card'),
  ]);
  if (first === 'sign-in') {
    await enter.click();
    await page.waitForSelector(card, { timeout: T });
  }
  await page.waitForSelector(`${card}[data-status=live]`, { timeout: T });
}

async function appState(app) {
  return {
    sync: await attr(`${appSel(app)} [data-badge=sync]`, 'data-value'),
    health: await attr(`${appSel(app)} [data-badge=health]`, 'data-value'),
    revision: await text(`${appSel(app)} [data-field=revision]`),
    title: await text(`${appSel(app)} [data-field=commit-title]`),
    actions: await page.$$eval(`${appSel(app)} [data-action]`, bs => bs.map(b => b.dataset.action)),
  };
}

async function until(what, check, ms = T) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await page.waitForTimeout(50);
  }
}

try {
  await openEntity('sample-app');
  await page.waitForSelector(appSel('sample-app'), { timeout: T });
  const initial = await appState('sample-app');
  await page.evaluate(() => { window.__sameDocument = true; });

  // A commit is pushed (by the test, to the simulated git): the card follows, live.
  await waitFor('push', { initial });
  const pushed = await until('the card to show the pushed commit, OutOfSync', async () => {
    const s = await appState('sample-app');
    return s.sync === 'OUT_OF_SYNC' && s.title.includes('e2e:') ? s : undefined;
  });

  // A sync through the API (by the test): the card shows it without a reload.
  await waitFor('sync', { pushed });
  const t0 = Date.now();
  const synced = await until('the card to show the sync', async () => {
    const s = await appState('sample-app');
    const phase = await page.getAttribute(`${appSel('sample-app')} [data-field=operation]`, 'data-phase').catch(() => null);
    return s.sync === 'SYNCED' && phase === 'SUCCEEDED' ? { ...s, phase } : undefined;
  }, 10_000);
  const syncSeenMs = Date.now() - t0;
  const sameDocument = await page.evaluate(() => window.__sameDocument === true);
  if (process.env.SCREENSHOT) {
    await page.waitForTimeout(300); // let the last transition of the badges settle for the picture
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }

  // carol (app-team) may act on sample-app, but not see the platform's argocd app.
  await openEntity('argocd');
  const argocd = {
    actions: await page.$$eval(`${card} [data-action]`, bs => bs.map(b => b.dataset.action)),
    hidden: await text(`${card} [data-state=hidden-applications]`),
    apps: await page.$$eval(`${card} [data-app]`, as => as.map(a => a.dataset.app)),
  };

  // The Deployment tab: history with roll back, workloads and pods, GitHub.
  await page.goto(`${base}/catalog/default/component/sample-app/idp-graph`);
  await page.waitForSelector('[data-idp-graph-content] [data-card=argocd] [data-history]', { timeout: T });
  const tab = {
    history: await page.locator('[data-card=argocd] [data-history]').count(),
    pods: await page.locator('[data-card=kubernetes] [data-pod]').count(),
    prs: await page.$$eval('[data-card=github] [data-pr]', ps => ps.map(p => Number(p.dataset.pr))),
    actions: [...new Set(await page.$$eval('[data-idp-graph-content] [data-action]', bs => bs.map(b => b.dataset.action)))].sort(),
  };
  // An action from the page: Refresh, confirmed in its dialog, runs as carol.
  await page.click('[data-card=argocd] [data-action=refresh]');
  await page.click('[data-confirm=ok]', { timeout: T });
  await page.waitForSelector('[data-card=argocd] [data-outcome]', { timeout: T });
  tab.refresh = {
    outcome: await attr('[data-card=argocd] [data-outcome]', 'data-outcome'),
    text: await text('[data-card=argocd] [data-outcome]'),
  };

  // ArgoCD goes away (the test stops its simulation): the card says so, keeps the last state.
  await openEntity('sample-app');
  const beforeDown = await appState('sample-app');
  await waitFor('argocd-down', { beforeDown });
  const t1 = Date.now();
  await page.waitForSelector(`${card} [data-upstream-down=ArgoCD]`, { timeout: T });
  const downSeenMs = Date.now() - t1;
  const down = {
    notice: await text(`${card} [data-upstream-down=ArgoCD]`),
    ...(await appState('sample-app')),
    // The app itself says its state is the last known one, and how old it is.
    stale: await text(`${appSel('sample-app')} [data-field=stale]`),
  };

  console.log(JSON.stringify({
    ok: true, initial, pushed, synced, syncSeenMs, sameDocument, argocd, tab, beforeDown, down, downSeenMs,
    graphRequests, wsInitHasToken: String(wsInit?.Authorization ?? '').startsWith('Bearer ey'),
    foreign, errors,
  }));
} catch (e) {
  const file = process.env.SCREENSHOT ? process.env.SCREENSHOT.replace(/\.png$/, '-failure.png') : undefined;
  if (file) await page.screenshot({ path: file, fullPage: true }).catch(() => {});
  console.log(JSON.stringify({ ok: false, error: String(e?.stack ?? e), url: page.url(), foreign, errors, failureScreenshot: file }));
} finally {
  await browser.close();
}
