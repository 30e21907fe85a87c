import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { adminRoutes } from '../../src/server/admin-routes.js';
import { startAdminServer, type AdminServer } from '../../src/server/admin-server.js';
import { monitoringRoutes } from '../../src/server/monitoring-routes.js';
import { WsEngineHarness } from '../helpers/ws-engine.js';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it): never a downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';
const OUTPUT_DIR = path.resolve('test-output');
const TOKEN = 'dashboard-test-token-0123456789';

const harness = new WsEngineHarness();
let browser: Browser | null = null;
let admin: AdminServer | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
  await admin?.close();
  admin = null;
  await harness.cleanup();
});

describe('dashboard', () => {
  it('asks for the token, then shows the numbers moving while a load runs', { timeout: 60_000 }, async () => {
    expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`).toBe(true);
    const running = await harness.start();
    const logger = createLogger({ sink: () => {} });
    const context = { engine: running.engine, store: running.store, clients: running.clients, sessions: running.server.sessions, logger };
    admin = await startAdminServer({ host: '127.0.0.1', port: 0, adminToken: TOKEN, logger, routes: [...adminRoutes(context), ...monitoringRoutes(context)] });
    running.addClient('app');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`http://127.0.0.1:${admin.address.port}/`);
    await page.waitForSelector('#login:not([hidden])');

    // A wrong token brings the login back with the reason.
    await page.fill('#token', 'not-the-token');
    await page.click('#login-form button');
    // Page functions run in the browser: given as source text (the tests are type-checked without the DOM library).
    await page.waitForFunction("document.getElementById('login-error').textContent.includes('refused')");

    await page.fill('#token', TOKEN);
    await page.click('#login-form button');
    await page.waitForSelector('#app:not([hidden])');

    // Load: a consumer acking everything, a producer publishing in batches until the test ends.
    const consumer = await running.engine.subscribe('app', { name: 'load', pattern: 'load/**' }, (deliveries, c) => c.ack(deliveries));
    let publishing = true;
    const producer = (async () => {
      while (publishing) {
        await running.engine.publishMany('app', Array.from({ length: 200 }, (_, i) => ({ type: `load/t${i % 4}`, payload: new Uint8Array(64) })));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      const total = async () => Number((await page.textContent('#published-total'))!.replace(/,/g, ''));
      await page.waitForFunction("Number(document.getElementById('publish-rate').textContent.replace(/,/g, '')) > 0", undefined, { timeout: 15_000 });
      const first = await total();
      await page.waitForFunction(`Number(document.getElementById('published-total').textContent.replace(/,/g, '')) > ${first}`, undefined, { timeout: 15_000 });
      expect(await total()).toBeGreaterThan(first);
      expect(Number((await page.textContent('#delivery-rate'))!.replace(/,/g, ''))).toBeGreaterThanOrEqual(0);
      await page.waitForFunction("document.getElementById('latency-legend').textContent.includes('publish_to_durable')", undefined, { timeout: 15_000 });
      expect(await page.textContent('#subscriptions')).toContain('app/load');
      fs.mkdirSync(OUTPUT_DIR, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT_DIR, 'dashboard.png'), fullPage: true });
      expect(fs.statSync(path.join(OUTPUT_DIR, 'dashboard.png')).size).toBeGreaterThan(10_000);
      // The token lives in the tab's session storage only.
      expect(await page.evaluate("[sessionStorage.getItem('ensync-admin-token'), localStorage.length]")).toEqual([TOKEN, 0]);
    } finally {
      publishing = false;
      await producer;
      await consumer.close();
    }
  });
});
