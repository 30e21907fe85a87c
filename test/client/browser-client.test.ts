import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../cli/spawn-engine.js';
import { WsEngineHarness } from '../helpers/ws-engine.js';

/** Debian's chromium (`apt-get install chromium`; .ci/run installs it): never a downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';

/** Only these folders are served: the built SDK and protocol, and the SDK's two browser dependencies. */
const SERVED = ['dist/src/client/', 'dist/src/protocol/', 'node_modules/msgpackr/', 'node_modules/@noble/ed25519/'];

const PAGE = (wsUrl: string, clientId: string, secretKey: string) => `<!doctype html>
<script type="importmap">
{ "imports": { "msgpackr": "/node_modules/msgpackr/index.js", "@noble/ed25519": "/node_modules/@noble/ed25519/index.js" } }
</script>
<script type="module">
import { EnSyncClient } from '/dist/src/client/index.js';
try {
  const client = await EnSyncClient.connect(${JSON.stringify(wsUrl)}, { clientId: ${JSON.stringify(clientId)}, secretKey: ${JSON.stringify(secretKey)} });
  const sub = await client.subscribe('browser/**', { name: 'in-browser', from: 'all' });
  const receipt = await client.publish('browser/hello', { greeting: 'from chromium', n: 7 }, { priority: 6 });
  let received = null;
  for await (const event of sub) {
    received = { id: event.id, type: event.type, value: event.value, priority: event.priority, sender: event.sender };
    await event.ack();
    break;
  }
  await client.close();
  window.result = { receipt, received, hasBuffer: typeof Buffer !== 'undefined' };
} catch (error) {
  window.result = { error: String(error && error.stack || error) };
}
</script>`;

const harness = new WsEngineHarness();
let browser: Browser | null = null;
let server: http.Server | null = null;
afterEach(async () => {
  await browser?.close();
  browser = null;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
  await harness.cleanup();
});

describe('client SDK in a browser', () => {
  it('connects, signs the challenge, publishes, subscribes and acks from headless chromium, with no Node globals', { timeout: 60_000 }, async () => {
    expect(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`).toBe(true);
    const running = await harness.start();
    const client = running.addClient('browser-app');
    const page = PAGE(running.url, client.id, Buffer.from(client.secretKey).toString('base64'));
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://page.invalid');
      if (url.pathname === '/') {
        res.writeHead(200, { 'content-type': 'text/html' }).end(page);
        return;
      }
      const relative = decodeURIComponent(url.pathname).replace(/^\/+/, '');
      const file = path.resolve(REPO_ROOT, relative);
      if (!SERVED.some((prefix) => relative.startsWith(prefix)) || !file.startsWith(REPO_ROOT) || !fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(file));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const tab = await browser.newPage();
    await tab.goto(`http://127.0.0.1:${port}/`);
    // Page functions run in the browser: given as source text (the tests are type-checked without the DOM library).
    await tab.waitForFunction('window.result !== undefined', undefined, { timeout: 30_000 });
    const result = (await tab.evaluate('window.result')) as { error?: string; receipt: { id: string; type: string; duplicate: boolean }; received: Record<string, unknown>; hasBuffer: boolean };
    expect(result.error).toBeUndefined();
    expect(result.hasBuffer).toBe(false);
    expect(result.receipt).toMatchObject({ type: 'browser/hello', duplicate: false });
    expect(result.received).toEqual({ id: result.receipt.id, type: 'browser/hello', value: { greeting: 'from chromium', n: 7 }, priority: 6, sender: 'browser-app' });
    const stored = await running.engine.eventTrail('browser/hello', result.receipt.id);
    expect(stored.trail.map((e) => e.kind)).toEqual(['published', 'delivered', 'acked']);
  });
});
