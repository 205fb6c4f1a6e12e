/**
 * Options: the gateway URL that turns feedback on (empty: off, nothing is sent).
 *
 * A gateway on this machine (127.0.0.1, localhost) is covered by the manifest's
 * host permissions; any other origin is asked for (optional_host_permissions),
 * so the extension can reach only the gateway the reader chose.
 */
'use strict';

function parseGateway(text) {
  let url;
  try {
    url = new URL(text);
  } catch (e) {
    throw new Error(`"${text}" is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (!['http:', 'https:'].includes(url.protocol)) throw new Error(`${url.protocol} is not http: or https:`);
  return url;
}

async function save() {
  const status = document.getElementById('status');
  const text = document.getElementById('gateway').value.trim();
  if (!text) return clear();
  try {
    const url = parseGateway(text);
    const local = ['127.0.0.1', 'localhost'].includes(url.hostname);
    if (!local && !(await chrome.permissions.request({origins: [`${url.origin}/*`]}))) {
      throw new Error(`permission to reach ${url.origin} was not granted`);
    }
    const gatewayUrl = url.href.replace(/\/+$/, '');
    await chrome.storage.local.set({gatewayUrl});
    status.dataset.state = 'on';
    status.textContent = `Feedback is on: answers go to ${gatewayUrl}.`;
  } catch (error) {
    status.dataset.state = 'error';
    status.textContent = `Not saved: ${error.message}`;
  }
}

async function clear() {
  await chrome.storage.local.remove('gatewayUrl');
  document.getElementById('gateway').value = '';
  const status = document.getElementById('status');
  status.dataset.state = 'off';
  status.textContent = 'Feedback is off: nothing leaves the browser.';
}

document.addEventListener('DOMContentLoaded', async () => {
  const {gatewayUrl} = await chrome.storage.local.get('gatewayUrl');
  document.getElementById('gateway').value = gatewayUrl || '';
  document.getElementById('save').addEventListener('click', save);
  document.getElementById('clear').addEventListener('click', clear);
});
