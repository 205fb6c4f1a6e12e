/**
 * Runs extension/background.js's own sendFeedback in Node against a real gateway, so the
 * test posts exactly the body and headers the extension builds (no copy of the JS payload).
 *
 * node extension_feedback.mjs <background.js> <spec.json>; spec: {gateway_url, model,
 * model_version, item}. Only the browser's APIs are stubbed: chrome.storage holds the
 * gateway URL (the options page's opt-in), the bundled model/extension_config.json names
 * the model, and every other fetch is Node's real one. Prints {result, request} as JSON.
 */
import fs from 'node:fs';
import vm from 'node:vm';

const [backgroundPath, specPath] = process.argv.slice(2);
const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
const listener = {addListener() {}};
let request = null;

async function extensionFetch(url, init = {}) {
  if (url === 'model/extension_config.json') {
    return new Response(JSON.stringify({model: spec.model, model_version: spec.model_version}));
  }
  request = {url, method: init.method, headers: init.headers, body: init.body};
  return fetch(url, init);
}

const context = {
  importScripts() {},
  fetch: extensionFetch,
  performance,
  console,
  chrome: {
    storage: {local: {get: async () => ({gatewayUrl: spec.gateway_url}), set: async () => {}}},
    runtime: {getURL: (path) => path, onInstalled: listener, onMessage: listener},
    contextMenus: {onClicked: listener, create() {}},
  },
};
context.self = context;
vm.runInNewContext(fs.readFileSync(backgroundPath, 'utf8'), context, {filename: backgroundPath});
const result = await context.sendFeedback(spec.item);
console.log(JSON.stringify({result, request}));
