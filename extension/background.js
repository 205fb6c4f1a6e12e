/**
 * Service worker: owns the model and answers every scoring request.
 *
 * Why here: one model instance for all tabs, loaded once from the extension
 * package (no network), and reachable from the context menu, the popup and the
 * content script alike. TF.js runs on its CPU backend (no WebGL in workers).
 */
importScripts('vendor/tf.min.js', 'scorer.js');

const MENU_ID = 'check-statement';
let configPromise = null;
let scorerPromise = null;

function modelConfig() {
  if (!configPromise) {
    configPromise = fetch(chrome.runtime.getURL('model/extension_config.json')).then((r) => r.json());
  }
  return configPromise;
}

function scorer() {
  if (!scorerPromise) {
    scorerPromise = modelConfig()
      .then((config) => StatementScorer.load(tf, chrome.runtime.getURL('model/model.json'), config));
  }
  return scorerPromise;
}

/** Scores statements and reports the time per statement (for the latency figure). */
async function scoreStatements(statements) {
  const s = await scorer();
  const start = performance.now();
  const results = await s.score(statements);
  const elapsed = performance.now() - start;
  return {results, classes: s.config.classes, ms_per_statement: elapsed / statements.length};
}

/** Toolbar badge: T / F for a lean, ? for "not sure", the label's start without a lean. */
function badgeText(result) {
  if (result.lean) return result.lean.sure ? result.lean.side.charAt(0).toUpperCase() : '?';
  return result.label.replace(/[^A-Za-z]/g, '').slice(0, 4).toUpperCase();
}

function resultTitle(result) {
  if (result.lean) return result.lean.text;
  return `${result.label} (${Math.round(result.confidence * 100)}%)`;
}

/**
 * Opt-in feedback: the reader's "right" / "wrong" on a lean goes to the gateway's
 * feedback endpoint only when a gateway URL was entered on the options page
 * (chrome.storage.local.gatewayUrl, empty by default); otherwise nothing is sent.
 * One POST of {statement, model, model_version, lean, probability, answer}.
 */
async function sendFeedback(item) {
  const {gatewayUrl} = await chrome.storage.local.get('gatewayUrl');
  if (!gatewayUrl) return {sent: false};
  if (!item || !['right', 'wrong'].includes(item.answer) || !item.statement || !item.lean) {
    throw new Error("feedback: expected {statement, lean: {side, probability}, answer: 'right' or 'wrong'}");
  }
  const config = await modelConfig();
  const url = `${gatewayUrl.replace(/\/+$/, '')}/v1/models/${encodeURIComponent(config.model)}/feedback`;
  const body = {
    statement: item.statement, model: config.model, model_version: config.model_version,
    lean: item.lean.side, probability: item.lean.probability, answer: item.answer,
  };
  const response = await fetch(url, {
    method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify(body)});
  return {sent: true, status: response.status, url};
}

/** The context-menu path: score the selection, show it on the page and the toolbar. */
async function checkSelection(tabId, text) {
  const statement = (text || '').trim();
  if (!statement) return null;
  const {results, classes} = await scoreStatements([statement]);
  const result = results[0];
  await chrome.action.setBadgeText({tabId, text: badgeText(result)});
  await chrome.action.setTitle({tabId, title: resultTitle(result)});
  await chrome.tabs.sendMessage(tabId, {type: 'show-result', statement, result, classes});
  return result;
}

/** Turns paragraph scoring on or off in a tab (the content script does the walking). */
async function setPageScoring(tabId, enabled) {
  await chrome.storage.local.set({scorePage: enabled});
  return chrome.tabs.sendMessage(tabId, {type: enabled ? 'score-page' : 'clear-page'});
}

chrome.runtime.onInstalled.addListener(() => {
  chrome.contextMenus.create({id: MENU_ID, title: 'Check this statement', contexts: ['selection']});
});

chrome.contextMenus.onClicked.addListener((info, tab) => {
  if (info.menuItemId === MENU_ID && tab) checkSelection(tab.id, info.selectionText);
});

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (message && message.type === 'score') {
    scoreStatements(message.statements)
      .then(sendResponse)
      .catch((error) => sendResponse({error: String(error && error.message || error)}));
    return true;  // answered asynchronously
  }
  if (message && message.type === 'check-selection') {
    checkSelection(message.tabId, message.text)
      .then((result) => sendResponse({result}))
      .catch((error) => sendResponse({error: String(error && error.message || error)}));
    return true;
  }
  if (message && message.type === 'feedback') {
    sendFeedback(message.item)
      .then(sendResponse)
      .catch((error) => sendResponse({sent: false, error: String(error && error.message || error)}));
    return true;
  }
  if (message && message.type === 'page-scoring') {
    setPageScoring(message.tabId, message.enabled)
      .then(() => sendResponse({ok: true}))
      .catch((error) => sendResponse({error: String(error && error.message || error)}));
    return true;
  }
  return false;
});

// Exposed for tests driving the worker directly (context menus cannot be clicked headless).
self.checkSelection = checkSelection;
self.setPageScoring = setPageScoring;
self.scoreStatements = scoreStatements;
self.sendFeedback = sendFeedback;
// Set last: the worker's globals exist before its top-level code has run.
self.statementCheckReady = true;
