/**
 * Which sentences of a page are checkable claims: the only ones the extension scores.
 *
 * Why a rule, and this one: a fact-checking model judges claims; scoring every
 * paragraph gives verdicts on headings, captions and chatter ("The weather was
 * pleasant.") that mean nothing. The rule, applied to each sentence of a
 * paragraph (docs/edge.md, "Which sentences are scored"):
 *   1. split into sentences at . ! ? followed by a space and a capital, a digit
 *      or a quote, except after common abbreviations (Mr., U.S., Jan., ...)
 *      and inside numbers (3.5);
 *   2. length: MIN_WORDS..MAX_WORDS words and at most MAX_CHARS characters;
 *   3. a verb: an auxiliary or a common verb (from a list, also spelt without
 *      apostrophes: "cant"), or a word ending in -ed or -ing (no part-of-speech
 *      tagger ships offline);
 *   4. something checkable: a number (digits or a number word), a comparison,
 *      quantity or cause word (more, than, most, percent, doubled, some, many,
 *      because, caused, ...), a sign (% $ < > =), or a
 *      named person, place or organisation (a capitalised word, the first one
 *      only when it is not a common opener such as "The" or "We", or an
 *      all-capitals acronym).
 * Measured by bench/claim_filter.mjs: the share of LIAR statements kept and the
 * share of tests/extension/fixtures/non_claims.json dropped.
 *
 * Shared by the content script and Node (tests, the bench), like scorer.js.
 */
(function (root) {
  'use strict';

  const MIN_WORDS = 4;
  const MAX_WORDS = 80;
  const MAX_CHARS = 600;
  const ABBREVIATIONS = new Set([
    'mr', 'mrs', 'ms', 'dr', 'sen', 'rep', 'gov', 'gen', 'lt', 'col', 'sgt', 'st', 'jr', 'sr', 'prof',
    'inc', 'corp', 'co', 'ltd', 'vs', 'etc', 'no', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug',
    'sep', 'sept', 'oct', 'nov', 'dec', 'u.s', 'u.k', 'u.n', 'd.c', 'e.g', 'i.e', 'a.m', 'p.m', 'ft', 'mt']);
  const VERBS = new Set([
    'is', 'are', 'was', 'were', 'be', 'been', 'being', 'am', "isn't", "aren't", "wasn't", "weren't",
    'has', 'have', 'had', "hasn't", "haven't", "hadn't", 'do', 'does', 'did', "don't", "doesn't", "didn't",
    'will', 'would', 'can', 'could', 'shall', 'should', 'may', 'might', 'must', "won't", "can't",
    "wouldn't", "couldn't", "it's", "that's", "there's", "he's", "she's", "we're", "they're", "we've",
    'says', 'say', 'said', 'claims', 'claim', 'voted', 'votes', 'vote', 'pays', 'pay', 'paid', 'costs',
    'cost', 'spends', 'spend', 'spent', 'gets', 'get', 'got', 'gives', 'give', 'gave', 'makes', 'make',
    'made', 'takes', 'take', 'took', 'goes', 'go', 'went', 'gone', 'grows', 'grew', 'grown', 'rises',
    'rose', 'risen', 'falls', 'fell', 'fallen', 'wants', 'want', 'supports', 'support', 'opposes',
    'oppose', 'leads', 'lead', 'led', 'ranks', 'rank', 'holds', 'hold', 'held', 'means', 'mean', 'meant',
    'knows', 'know', 'knew', 'thinks', 'think', 'thought', 'keeps', 'keep', 'kept', 'puts', 'put',
    'cuts', 'cut', 'raises', 'raise', 'loses', 'lose', 'lost', 'wins', 'win', 'won', 'builds', 'build',
    'built', 'sends', 'send', 'sent', 'brings', 'bring', 'brought', 'creates', 'create', 'needs', 'need',
    'owns', 'own', 'runs', 'run', 'ran', 'signs', 'sign', 'funds', 'fund', 'allows', 'allow', 'bans',
    'ban', 'requires', 'require', 'includes', 'include', 'becomes', 'become', 'became', 'comes', 'come',
    'came', 'dies', 'die', 'kills', 'kill', 'killed', 'lives', 'live', 'works', 'work', 'earns', 'earn',
    'receives', 'receive', 'sees', 'see', 'saw', 'seen', 'shows', 'show', 'shown', 'tells', 'tell',
    'told', 'uses', 'use', 'buys', 'buy', 'bought', 'sells', 'sell', 'sold', 'owes', 'owe', 'exists',
    'exist', 'remains', 'remain', 'happens', 'happen', 'increases', 'increase', 'decreases', 'decrease',
    'doubles', 'triples', 'tripled', 'pushes', 'push', 'passes', 'pass', 'stops', 'stop', 'proposes',
    'propose', 'plans', 'plan', 'calls', 'call', 'helps', 'help', 'hurts', 'hurt', 'adds', 'add',
    'provides', 'provide', 'protects', 'protect', 'ends', 'end', 'leaves', 'leave', 'left', 'begins',
    'began', 'begun', 'lets', 'let', 'sits', 'sat', 'stands', 'stood', 'accounts', 'employs', 'employ',
    'borrows', 'borrow', 'taxes', 'tax', 'charges', 'charge', 'represents', 'contains', 'contain',
    'totals', 'averages', 'outnumber', 'outnumbers', 'exceeds', 'exceed', 'tops', 'trails', 'offer',
    'offers', 'teach', 'teaches', 'import', 'imports', 'belong', 'belongs', 'fight', 'fights', 'profit',
    'profits', 'consist', 'consists', 'mandate', 'mandates', 'bled', 'shut', 'shuts', 'pays', 'hire',
    'hires', 'wrote', 'writes', 'write', 'drive', 'drives', 'drove', 'eat', 'eats', 'ate', 'spent',
    'found', 'find', 'finds', 'became', 'fail', 'fails', 'force', 'forces', 'face', 'faces', 'cover',
    'covers', 'rank', 'block', 'blocks', 'apply', 'applies', 'qualify', 'qualifies', 'believe',
    'believes', 'agree', 'agrees', 'refuse', 'refuses', 'save', 'saves', 'waste', 'wastes', 'attend',
    'attends', 'serve', 'serves', 'sit', 'reach', 'reaches', 'return', 'returns', 'care', 'cares',
    'pollute', 'pollutes', 'destroy', 'destroys', 'threaten', 'threatens', 'prevent', 'prevents',
    // without apostrophes, as LIAR and hurried typing write them
    'cant', 'dont', 'doesnt', 'didnt', 'isnt', 'arent', 'wasnt', 'werent', 'wont', 'hasnt', 'havent',
    'im', 'ive', 'whos', 'thats', 'theres', 'hes', 'shes', 'theyre', 'youre', 'weve', "who's", "i'm",
    "i've", "you're", "let's"]);
  const NUMBER_WORDS = new Set([
    'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
    'twenty', 'thirty', 'forty', 'fifty', 'hundred', 'hundreds', 'thousand', 'thousands', 'million',
    'millions', 'billion', 'billions', 'trillion', 'trillions', 'dozen', 'dozens', 'half', 'third',
    'quarter', 'twice', 'double', 'doubled', 'triple', 'tripled', 'percent', 'majority', 'minority',
    'zero', 'once', 'first', 'second', 'last', 'single', 'none', 'every', 'all', 'nobody', 'only']);
  const COMPARISONS = new Set([
    'more', 'less', 'fewer', 'than', 'most', 'least', 'higher', 'lower', 'highest', 'lowest', 'larger',
    'largest', 'smaller', 'smallest', 'bigger', 'biggest', 'greater', 'greatest', 'better', 'best',
    'worse', 'worst', 'increase', 'increased', 'increases', 'decrease', 'decreased', 'decreases',
    'rise', 'rose', 'risen', 'fell', 'fallen', 'grew', 'cut', 'cuts', 'raised', 'lowered', 'record',
    'never', 'always', 'ever', 'same', 'equal', 'equally', 'since', 'per', 'average', 'rate', 'times',
    'nearly', 'almost', 'entire', 'whole', 'some', 'many', 'few', 'several', 'lot', 'lots', 'each',
    'free', 'because', 'due', 'cause', 'causes', 'caused', 'related', 'responsible', 'result', 'likely',
    'directly', 'illegal', 'legal', 'ban', 'banned', 'cut', 'raised', 'doubled', 'record']);
  // Sentence openers that are not names: a capitalised first word outside this list counts as
  // a name ("Texas leads ...", "Webster sponsored ..."), as a capitalised word anywhere else does.
  const OPENERS = new Set([
    'the', 'a', 'an', 'it', 'its', 'we', 'i', 'he', 'she', 'they', 'you', 'this', 'that', 'there',
    'these', 'those', 'our', 'my', 'his', 'her', 'their', 'your', 'what', 'when', 'where', 'why', 'how',
    'who', 'if', 'in', 'on', 'at', 'for', 'as', 'but', 'and', 'so', 'or', 'no', 'yes', 'all', 'some',
    'every', 'each', 'after', 'before', 'while', 'please', 'thanks', 'thank', 'click', 'read', 'share',
    'sign', 'follow', 'stay', 'back', 'continue', 'listen', 'have', 'photo', 'skip', 'related',
    'reporting', 'nobody', 'everyone', 'everybody', 'people', 'everything', 'here', 'now', 'today',
    'yesterday', 'tomorrow', 'then', 'still', 'just', 'also', 'well', 'oh', 'hi', 'hello', 'welcome',
    'advertisement', 'subscribe', 'from', 'with', 'by', 'to', 'of', 'about', 'once', 'one', 'many',
    'most', 'several', 'someone', 'something', 'nothing', 'anyone', 'let', 'do', 'does', 'did', 'is',
    'are', 'was', 'were', 'can', 'will', 'should', 'would', 'could', 'not', 'even', 'maybe', 'perhaps',
    'sometimes', 'always', 'never', 'what\'s', 'it\'s', 'that\'s', 'there\'s', 'i\'m', 'we\'re',
    'our', 'good', 'great', 'nice', 'more', 'like', 'over', 'under', 'during', 'since', 'until']);
  const WORD = /[A-Za-z\u00C0-\u024F][A-Za-z\u00C0-\u024F'\u2019.-]*|\d[\d,.]*%?/g;

  /** Sentences of a text, by rule 1. */
  function splitSentences(text) {
    const clean = String(text).replace(/\s+/g, ' ').trim();
    const out = [];
    let start = 0;
    const boundary = /[.!?]+["'\u201D\u2019)]*\s+(?=["'\u201C\u2018(]?[A-Z0-9])/g;
    let m;
    while ((m = boundary.exec(clean)) !== null) {
      const before = clean.slice(start, m.index);
      const last = (before.match(/([A-Za-z.]+)$/) || ['', ''])[1].toLowerCase().replace(/\.$/, '');
      const initial = /(^|\s)[A-Z]$/.test(before);  // "John F. Kennedy"
      if (clean[m.index] === '.' && (ABBREVIATIONS.has(last) || initial)) continue;
      out.push(clean.slice(start, m.index + m[0].trimEnd().length).trim());
      start = m.index + m[0].length;
    }
    if (start < clean.length) out.push(clean.slice(start).trim());
    return out.filter((s) => s.length > 0);
  }

  /** Why a sentence is (or is not) a claim: {claim, words, verb, checkable, reason}. */
  function explain(sentence) {
    const text = String(sentence).trim();
    const words = text.match(WORD) || [];
    const lower = words.map((w) => w.toLowerCase().replace(/[\u2019]/g, "'").replace(/[.]+$/, ''));
    const verb = lower.some((w) => VERBS.has(w) || (w.length > 4 && /[a-z](ed|ing)$/.test(w)));
    const number = words.some((w) => /\d/.test(w)) || lower.some((w) => NUMBER_WORDS.has(w));
    const comparison = lower.some((w) => COMPARISONS.has(w)) || /[<>=%$\u20AC\u00A3]/.test(text);
    const named = words.some((w, i) => (/^[A-Z][a-z\u00E0-\u024F]/.test(w) && w !== 'I'
                                         && (i > 0 || !OPENERS.has(lower[0])))
                             || /^[A-Z]{2,}s?$/.test(w.replace(/[.-]/g, '')));
    const result = {words: words.length, verb, checkable: number || comparison || named};
    if (words.length < MIN_WORDS) return {...result, claim: false, reason: `fewer than ${MIN_WORDS} words`};
    if (words.length > MAX_WORDS || text.length > MAX_CHARS) return {...result, claim: false, reason: 'too long'};
    if (!verb) return {...result, claim: false, reason: 'no verb'};
    if (!result.checkable) return {...result, claim: false, reason: 'nothing checkable'};
    return {...result, claim: true, reason: 'claim'};
  }

  function isClaim(sentence) {
    return explain(sentence).claim;
  }

  /** The claim sentences of a paragraph, in order. */
  function claimsOf(text) {
    return splitSentences(text).filter(isClaim);
  }

  const Claims = {splitSentences, explain, isClaim, claimsOf, MIN_WORDS, MAX_WORDS, MAX_CHARS};
  root.Claims = Claims;
  if (typeof module !== 'undefined' && module.exports) module.exports = Claims;
})(typeof self !== 'undefined' ? self : globalThis);
