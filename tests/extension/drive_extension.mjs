/**
 * Drives the unpacked extension in headless Chromium with playwright-core.
 *
 * Usage: node drive_extension.mjs <extension_dir> <statements.json>
 * Prints one JSON object: the scores the extension gave through the selection
 * check (the context-menu path) and through paragraph scoring (the page path),
 * and the service worker's time per statement.
 *
 * Why these paths: a native context menu cannot be clicked headless, so the
 * test selects the text on the page and calls the same worker function the
 * menu calls; paragraph scoring runs exactly as for a user.
 */
import {chromium} from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

const [extensionDir, statementsFile] = process.argv.slice(2);
if (!extensionDir || !statementsFile) {
  console.error('usage: node drive_extension.mjs <extension_dir> <statements.json>');
  process.exit(2);
}
const statements = JSON.parse(fs.readFileSync(statementsFile, 'utf8'));
const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const page = `<!doctype html><html><head><meta charset="utf-8"><title>Statements</title></head><body>
${statements.map((s, i) => `<p id="s${i}">${escape(s)}</p>`).join('\n')}
</body></html>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, {'content-type': 'text/html; charset=utf-8'});
  res.end(page);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'extension-profile-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: false,  // new headless (which loads extensions) is asked for in args
  args: [
    '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--disable-extensions-except=${path.resolve(extensionDir)}`,
    `--load-extension=${path.resolve(extensionDir)}`,
  ],
});
try {
  const worker = context.serviceWorkers()[0] || await context.waitForEvent('serviceworker', {timeout: 30000});
  // Function declarations are visible before the worker's top-level code has run.
  for (let i = 0; i < 300 && !(await worker.evaluate(() => self.statementCheckReady === true)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const tab = context.pages()[0] || await context.newPage();
  await tab.goto(url);
  await tab.waitForSelector('#s0');
  for (const other of context.pages()) if (other !== tab) await other.close();
  // The only tab (the extension has no 'tabs' permission to match it by URL).
  const tabId = await worker.evaluate(async () => (await chrome.tabs.query({}))[0].id);

  // Selection check: select the first statement, run the context-menu handler.
  await tab.evaluate(() => {
    const range = document.createRange();
    range.selectNodeContents(document.getElementById('s0'));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  });
  const selected = await tab.evaluate(() => String(window.getSelection()));
  const menuResult = await worker.evaluate(
    ({id, text}) => self.checkSelection(id, text), {id: tabId, text: selected});
  const shown = await tab.waitForSelector('.statement-check-badge--selection');
  const selection = {
    statement: selected,
    raw: JSON.parse(await shown.getAttribute('data-raw')),
    label: await shown.getAttribute('data-label'),
    worker_raw: menuResult.raw,
  };

  // Page path: paragraph scoring, as the popup's toggle turns it on.
  await tab.evaluate(() => document.querySelectorAll('.statement-check-badge').forEach((e) => e.remove()));
  await worker.evaluate((id) => self.setPageScoring(id, true), tabId);
  await tab.waitForSelector('html[data-statement-check="scored"]', {timeout: 60000});
  const pageResults = await tab.evaluate((n) => {
    const out = [];
    for (let i = 0; i < n; i++) {
      const b = document.querySelector(`#s${i} .statement-check-badge`);
      out.push(b ? {label: b.dataset.label, confidence: Number(b.dataset.confidence),
                    raw: JSON.parse(b.dataset.raw)} : null);
    }
    return out;
  }, statements.length);

  // Latency: one statement per call, as a user checks them.
  const latency = await worker.evaluate(async (texts) => {
    const times = [];
    for (const t of texts) times.push((await self.scoreStatements([t])).ms_per_statement);
    times.sort((a, b) => a - b);
    return {median_ms: times[Math.floor(times.length / 2)], mean_ms: times.reduce((a, b) => a + b, 0) / times.length};
  }, statements);

  console.log(JSON.stringify({selection, page: pageResults, latency}));
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDataDir, {recursive: true, force: true});
}
