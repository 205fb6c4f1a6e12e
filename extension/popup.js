/** Popup: check the selected (or typed) statement; toggle claim scoring; say where feedback goes. */
'use strict';

async function activeTab() {
  const [tab] = await chrome.tabs.query({active: true, currentWindow: true});
  return tab;
}

async function selectedText(tab) {
  try {
    const [{result}] = await chrome.scripting.executeScript({
      target: {tabId: tab.id}, func: () => String(window.getSelection() || '')});
    return result.trim();
  } catch (e) {
    return '';  // pages the extension may not script (chrome://, the web store)
  }
}

function showDistribution(probabilities, classes) {
  const list = document.getElementById('distribution');
  list.replaceChildren(...probabilities.map((p, i) => {
    const item = document.createElement('li');
    item.textContent = `${classes[i] || i}: ${Math.round(p * 100)} %`;
    return item;
  }));
  document.getElementById('details').hidden = false;
}

async function check() {
  const text = document.getElementById('statement').value.trim();
  const out = document.getElementById('result');
  if (!text) { out.textContent = 'Type or select a statement first.'; return; }
  const answer = await chrome.runtime.sendMessage({type: 'score', statements: [text]});
  if (answer.error) { out.textContent = `Error: ${answer.error}`; return; }
  const r = answer.results[0];
  out.textContent = r.lean ? r.lean.text : `${r.label} (${Math.round(r.confidence * 100)} % confidence)`;
  out.dataset.lean = r.lean ? r.lean.state : 'none';
  out.dataset.probabilities = JSON.stringify(r.probabilities);
  showDistribution(r.probabilities, answer.classes || []);
}

/** The privacy line: nothing leaves the browser unless a gateway URL was entered. */
async function showFeedbackNote() {
  const {gatewayUrl} = await chrome.storage.local.get('gatewayUrl');
  const note = document.getElementById('feedback-note');
  note.dataset.feedback = gatewayUrl ? 'on' : 'off';
  note.textContent = gatewayUrl
    ? `Feedback is on: your "right" / "wrong" answers, with the statement, go to ${gatewayUrl}. `
      + 'Nothing else leaves the browser.'
    : 'Feedback is off: nothing leaves your browser. Enter a gateway URL in the options to send '
      + '"right" / "wrong" answers.';
}

document.addEventListener('DOMContentLoaded', async () => {
  await showFeedbackNote();
  document.getElementById('options').addEventListener('click', (e) => {
    e.preventDefault();
    chrome.runtime.openOptionsPage();
  });
  document.getElementById('check').addEventListener('click', check);
  const tab = await activeTab();
  if (tab) document.getElementById('statement').value = await selectedText(tab);
  const {scorePage} = await chrome.storage.local.get('scorePage');
  const toggle = document.getElementById('score-page');
  toggle.checked = Boolean(scorePage);
  toggle.addEventListener('change', () => chrome.runtime.sendMessage(
    {type: 'page-scoring', tabId: tab.id, enabled: toggle.checked}));
});
