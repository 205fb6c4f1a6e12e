/**
 * Content script: shows results on the page and, when asked, scores its claims.
 *
 * Scoring happens in the service worker; this script only finds statements,
 * sends them in batches and draws a verdict after each. Paragraphs are split
 * into sentences and only the sentences that look like checkable claims
 * (claims.js) are scored; headings, navigation, captions and page furniture
 * are not even read. A verdict is the calibrated lean ("leans true 68 %") or
 * "not sure"; clicking it shows the model's six-way distribution. The
 * "right" / "wrong" buttons go to the service worker, which sends them on only
 * when the reader entered a gateway URL in the options page.
 */
(function () {
  'use strict';
  const GROUP_CLASS = 'statement-check';
  const BADGE_CLASS = 'statement-check-badge';
  const BATCH = 32;
  // Page furniture whose text is never a claim worth a verdict.
  const SKIP = 'nav, header, footer, aside, figcaption, figure, menu, [role="navigation"], [role="banner"], '
    + '[role="contentinfo"], [aria-hidden="true"], .' + GROUP_CLASS;

  function percent(x) {
    return `${Math.round(x * 100)} %`;
  }

  function details(result) {
    const el = document.createElement('span');
    el.className = 'statement-check-details';
    el.hidden = true;
    el.textContent = result.probabilities
      .map((p, i) => `${(result.classes || [])[i] || i} ${percent(p)}`).join(' · ');
    return el;
  }

  function feedbackButtons(group, statement, result) {
    const note = document.createElement('span');
    note.className = 'statement-check-feedback-note';
    for (const answer of ['right', 'wrong']) {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'statement-check-feedback';
      button.dataset.answer = answer;
      button.textContent = answer;
      button.title = 'Sent to your gateway only if you entered its URL in the extension\'s options';
      button.addEventListener('click', async (event) => {
        event.stopPropagation();
        group.querySelectorAll('.statement-check-feedback').forEach((b) => { b.disabled = true; });
        const answerFromWorker = await chrome.runtime.sendMessage(
          {type: 'feedback', item: {statement, lean: result.lean, answer}});
        const sent = Boolean(answerFromWorker && answerFromWorker.sent);
        group.dataset.feedback = sent ? 'sent' : (answerFromWorker && answerFromWorker.error ? 'error' : 'not-sent');
        note.textContent = sent ? 'thanks: sent' : 'noted (feedback is off: nothing was sent)';
      });
      group.appendChild(button);
    }
    group.appendChild(note);
  }

  /** A verdict: the badge (lean or label), its details and, on a lean, the feedback buttons. */
  function verdict(statement, result, classes) {
    const group = document.createElement('span');
    group.className = GROUP_CLASS;
    group.dataset.statement = statement;
    const el = document.createElement('span');
    el.className = BADGE_CLASS;
    el.dataset.label = result.label;
    el.dataset.confidence = String(result.confidence);
    el.dataset.probabilities = JSON.stringify(result.probabilities);
    el.dataset.raw = JSON.stringify(result.raw);
    el.dataset.statement = statement;
    if (result.lean) {
      el.dataset.lean = result.lean.state;
      el.dataset.probabilityTrue = String(result.lean.probability);
      el.textContent = result.lean.text;
    } else {
      el.dataset.lean = 'none';
      el.textContent = `${result.label} ${percent(result.confidence)}`;
    }
    el.title = `"${statement}": click for the six-way distribution (offline model: a guess, not a fact check)`;
    const more = details({...result, classes});
    el.addEventListener('click', () => { more.hidden = !more.hidden; });
    group.appendChild(el);
    if (result.lean && result.lean.sure) feedbackButtons(group, statement, result);
    group.appendChild(more);
    return group;
  }

  function textOf(el) {
    return (el.innerText || el.textContent || '').trim();
  }

  /** Paragraph-like elements outside page furniture, innermost only, not yet scored. */
  function paragraphs() {
    return Array.from(document.querySelectorAll('p, li, blockquote, dd'))
      .filter((el) => !el.closest(SKIP) && !el.querySelector('p, li, blockquote, dd, .' + GROUP_CLASS));
  }

  /** [{element, statement}] for every claim sentence of the page's paragraphs. */
  function claims() {
    const out = [];
    for (const element of paragraphs()) {
      for (const statement of Claims.claimsOf(textOf(element))) out.push({element, statement});
    }
    return out;
  }

  async function scoreStatements(statements) {
    const answer = await chrome.runtime.sendMessage({type: 'score', statements});
    if (!answer || answer.error) throw new Error(answer ? answer.error : 'no answer from the extension');
    return answer;
  }

  async function scorePage() {
    const found = claims();
    for (let i = 0; i < found.length; i += BATCH) {
      const chunk = found.slice(i, i + BATCH);
      const answer = await scoreStatements(chunk.map((c) => c.statement));
      answer.results.forEach((result, j) => {
        chunk[j].element.appendChild(verdict(chunk[j].statement, result, answer.classes));
      });
    }
    document.documentElement.dataset.statementCheck = 'scored';
    document.documentElement.dataset.statementCheckClaims = String(found.length);
  }

  function clearPage() {
    document.querySelectorAll('.' + GROUP_CLASS).forEach((el) => el.remove());
    delete document.documentElement.dataset.statementCheck;
  }

  function showResult(statement, result, classes) {
    const selection = window.getSelection();
    const group = verdict(statement, result, classes);
    group.querySelector('.' + BADGE_CLASS).classList.add(BADGE_CLASS + '--selection');
    if (selection && selection.rangeCount > 0) {
      const range = selection.getRangeAt(0).cloneRange();
      range.collapse(false);
      range.insertNode(group);
    } else {
      document.body.appendChild(group);
    }
  }

  chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
    if (message.type === 'show-result') showResult(message.statement, message.result, message.classes);
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
