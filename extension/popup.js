/** Popup: check the selected (or typed) statement; toggle paragraph scoring. */
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

async function check() {
  const text = document.getElementById('statement').value.trim();
  const out = document.getElementById('result');
  if (!text) { out.textContent = 'Type or select a statement first.'; return; }
  const answer = await chrome.runtime.sendMessage({type: 'score', statements: [text]});
  if (answer.error) { out.textContent = `Error: ${answer.error}`; return; }
  const r = answer.results[0];
  out.textContent = `${r.label} (${Math.round(r.confidence * 100)}% confidence)`;
  out.dataset.probabilities = JSON.stringify(r.probabilities);
}

document.addEventListener('DOMContentLoaded', async () => {
  const tab = await activeTab();
  if (tab) document.getElementById('statement').value = await selectedText(tab);
  const {scorePage} = await chrome.storage.local.get('scorePage');
  const toggle = document.getElementById('score-page');
  toggle.checked = Boolean(scorePage);
  toggle.addEventListener('change', () => chrome.runtime.sendMessage(
    {type: 'page-scoring', tabId: tab.id, enabled: toggle.checked}));
  document.getElementById('check').addEventListener('click', check);
});
