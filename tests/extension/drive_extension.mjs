/**
 * Drives the unpacked extension in headless Chromium with playwright-core.
 *
 * Usage: node drive_extension.mjs <extension_dir> <spec.json>
 * The spec is a list of statements (one paragraph each), or
 * {"statements": [...], "extra_html": "...", "feedback": true}: extra markup
 * (headings, navigation, captions, paragraphs of several sentences) after the
 * statements, and the feedback scenario (below).
 * Prints one JSON object: the scores the extension gave through the selection
 * check (the context-menu path) and through claim scoring (the page path),
 * every verdict on the page, and the service worker's time per statement.
 *
 * Feedback scenario: a second local server records every request it gets (a
 * stand-in for the gateway, answering 200 to anything); the driver clicks
 * "right" on one verdict with no gateway URL set, reads the popup's privacy
 * line, enters the server's URL on the options page, reads the popup again and
 * clicks "wrong" on another verdict; it reports what the server received.
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
const spec = JSON.parse(fs.readFileSync(statementsFile, 'utf8'));
const {statements, extra_html: extraHtml = '', feedback = false} = Array.isArray(spec) ? {statements: spec} : spec;
const escape = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const page = `<!doctype html><html><head><meta charset="utf-8"><title>Statements</title></head><body>
${statements.map((s, i) => `<p id="s${i}">${escape(s)}</p>`).join('\n')}
${extraHtml}
</body></html>`;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The stand-in gateway: records every request (method, path, content type, body).
const received = [];
const gateway = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    received.push({method: req.method, path: req.url, content_type: req.headers['content-type'] || null, body});
    res.writeHead(200, {'content-type': 'application/json'});
    res.end('{"accepted": 1, "duplicates": 0}');
  });
});
await new Promise((resolve) => gateway.listen(0, '127.0.0.1', resolve));
const gatewayUrl = `http://127.0.0.1:${gateway.address().port}`;

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
  await tab.evaluate(() => document.querySelectorAll('.statement-check').forEach((e) => e.remove()));
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
  const verdicts = await tab.evaluate(() => Array.from(document.querySelectorAll('.statement-check-badge'))
    .map((b) => ({statement: b.dataset.statement, lean: b.dataset.lean, text: b.textContent,
                  probability_true: b.dataset.probabilityTrue === undefined ? null : Number(b.dataset.probabilityTrue),
                  raw: JSON.parse(b.dataset.raw), in: b.closest('[id]') ? b.closest('[id]').id : null,
                  buttons: b.parentElement.querySelectorAll('.statement-check-feedback').length})));
  // The details view: a click on a verdict shows the six-way distribution.
  const detailsShown = await tab.evaluate(() => {
    const badge = document.querySelector('.statement-check-badge');
    badge.click();
    const more = badge.parentElement.querySelector('.statement-check-details');
    return more && !more.hidden ? more.textContent : null;
  });

  let feedbackResult = null;
  if (feedback) {
    const extensionUrl = worker.url().split('/').slice(0, 3).join('/');  // URL.origin is 'null' there
    const popupNote = async () => {
      const popup = await context.newPage();
      await popup.goto(`${extensionUrl}/popup.html`);
      const note = await popup.waitForSelector('#feedback-note[data-feedback]');
      const out = {state: await note.getAttribute('data-feedback'), text: await note.textContent()};
      await popup.close();
      return out;
    };
    const clickFeedback = async (index, answer) => {
      const group = tab.locator('.statement-check:has(.statement-check-feedback)').nth(index);
      await group.locator(`.statement-check-feedback[data-answer="${answer}"]`).click();
      let state = null;
      for (let i = 0; i < 100 && !state; i++) {
        state = await group.getAttribute('data-feedback');
        if (!state) await sleep(50);
      }
      await sleep(500);  // a request, if any were sent, has arrived by now
      return {state, requests: received.length};
    };
    const off = await clickFeedback(0, 'right');
    const popupOff = await popupNote();
    const options = await context.newPage();
    await options.goto(`${extensionUrl}/options.html`);
    await options.fill('#gateway', gatewayUrl);
    await options.click('#save');
    await options.waitForSelector('#status[data-state]');
    const saved = await options.getAttribute('#status', 'data-state');
    await options.close();
    const popupOn = await popupNote();
    const on = await clickFeedback(1, 'wrong');
    for (let i = 0; i < 50 && received.length === 0; i++) await sleep(100);
    feedbackResult = {off, popup_off: popupOff, saved, popup_on: popupOn, on, gateway: gatewayUrl,
                      received: received.map((r) => ({...r, body: r.body ? JSON.parse(r.body) : null}))};
  }

  // Latency: one statement per call, as a user checks them.
  const latency = await worker.evaluate(async (texts) => {
    const times = [];
    for (const t of texts) times.push((await self.scoreStatements([t])).ms_per_statement);
    times.sort((a, b) => a - b);
    return {median_ms: times[Math.floor(times.length / 2)], mean_ms: times.reduce((a, b) => a + b, 0) / times.length};
  }, statements);

  console.log(JSON.stringify({selection, page: pageResults, verdicts, details: detailsShown,
                              feedback: feedbackResult, latency}));
} finally {
  await context.close();
  server.close();
  gateway.close();
  fs.rmSync(userDataDir, {recursive: true, force: true});
}
