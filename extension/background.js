/**
 * Service worker: owns the model and answers every scoring request.
 *
 * Why here: one model instance for all tabs, loaded once from the extension
 * package (no network), and reachable from the context menu, the popup and the
 * content script alike. TF.js runs on its CPU backend (no WebGL in workers).
 */
importScripts('vendor/tf.min.js', 'scorer.js');

const MENU_ID = 'check-statement';
let scorerPromise = null;

function scorer() {
  if (!scorerPromise) {
    scorerPromise = fetch(chrome.runtime.getURL('model/extension_config.json'))
      .then((r) => r.json())
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
  return {results, ms_per_statement: elapsed / statements.length};
}

function badgeText(result) {
  return result.label.replace(/[^A-Za-z]/g, '').slice(0, 4).toUpperCase();
}

/** The context-menu path: score the selection, show it on the page and the toolbar. */
async function checkSelection(tabId, text) {
  const statement = (text || '').trim();
  if (!statement) return null;
  const {results} = await scoreStatements([statement]);
  const result = results[0];
  await chrome.action.setBadgeText({tabId, text: badgeText(result)});
  await chrome.action.setTitle({tabId, title: `${result.label} (${Math.round(result.confidence * 100)}%)`});
  await chrome.tabs.sendMessage(tabId, {type: 'show-result', statement, result});
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
// Set last: the worker's globals exist before its top-level code has run.
self.statementCheckReady = true;
