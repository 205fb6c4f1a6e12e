/**
 * Content script: shows results on the page and, when asked, scores its paragraphs.
 *
 * Scoring happens in the service worker; this script only finds statements,
 * sends them in batches and draws a badge (label and confidence) after each.
 */
(function () {
  'use strict';
  const BADGE_CLASS = 'statement-check-badge';
  const MIN_CHARS = 20;
  const MAX_CHARS = 1000;
  const BATCH = 32;

  function badge(result) {
    const el = document.createElement('span');
    el.className = BADGE_CLASS;
    el.dataset.label = result.label;
    el.dataset.confidence = String(result.confidence);
    el.dataset.probabilities = JSON.stringify(result.probabilities);
    el.dataset.raw = JSON.stringify(result.raw);
    el.textContent = `${result.label} ${Math.round(result.confidence * 100)}%`;
    el.title = 'Statement check (offline model)';
    return el;
  }

  function candidates() {
    return Array.from(document.querySelectorAll('p, li, blockquote'))
      .filter((el) => !el.querySelector('.' + BADGE_CLASS))
      .filter((el) => {
        const n = el.innerText.trim().length;
        return n >= MIN_CHARS && n <= MAX_CHARS;
      });
  }

  async function scorePage() {
    const elements = candidates();
    for (let i = 0; i < elements.length; i += BATCH) {
      const chunk = elements.slice(i, i + BATCH);
      const answer = await chrome.runtime.sendMessage({
        type: 'score', statements: chunk.map((el) => el.innerText.trim())});
      if (!answer || answer.error) throw new Error(answer ? answer.error : 'no answer from the extension');
      answer.results.forEach((result, j) => chunk[j].appendChild(badge(result)));
    }
    document.documentElement.dataset.statementCheck = 'scored';
  }

  function clearPage() {
    document.querySelectorAll('.' + BADGE_CLASS).forEach((el) => el.remove());
    delete document.documentElement.dataset.statementCheck;
  }

  function showResult(statement, result) {
    const selection = window.getSelection();
    const el = badge(result);
    el.classList.add(BADGE_CLASS + '--selection');
    el.dataset.statement = statement;
    if (selection && selection.rangeCount > 0) {
      const range = selection.getRangeAt(0).cloneRange();
      range.collapse(false);
      range.insertNode(el);
    } else {
      document.body.appendChild(el);
    }
  }

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (message.type === 'show-result') showResult(message.statement, message.result);
    if (message.type === 'score-page') {
      scorePage().then(() => sendResponse({ok: true}), (e) => sendResponse({error: String(e.message || e)}));
      return true;
    }
    if (message.type === 'clear-page') clearPage();
    sendResponse({ok: true});
    return false;
  });

  chrome.storage.local.get('scorePage').then(({scorePage: enabled}) => {
    if (enabled) scorePage().catch((e) => console.warn('statement check:', e));
  });
})();
