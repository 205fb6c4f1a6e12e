/**
 * How the extension's claim rule (extension/claims.js) sorts statements.
 *
 * Why: the rule decides what the reader gets a verdict on; it must keep the
 * claims the model was trained to judge (LIAR's statements: share kept, target
 * >= 95 %) and drop ordinary page text (tests/extension/fixtures/non_claims.json:
 * share dropped). Each LIAR statement is one "paragraph": it counts as kept
 * when the rule keeps at least one of its sentences.
 *
 *   node bench/claim_filter.mjs --liar $LIAR_DIR/train.tsv [--fixture path] [--show 20]
 *
 * Prints one JSON object: {liar: {statements, kept_share, dropped_by}, fixture: {sentences,
 * dropped_share, kept}} and, with --show N, N dropped LIAR statements on stderr.
 */
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

const require = createRequire(import.meta.url);
const repo = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const Claims = require(path.join(repo, 'extension', 'claims.js'));

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const out = {};
const liar = option('liar');
if (liar) {
  const statements = fs.readFileSync(liar, 'utf8').split('\n').filter(Boolean).map((line) => line.split('\t')[2]);
  const droppedBy = {};
  const dropped = [];
  for (const statement of statements) {
    if (Claims.claimsOf(statement).length > 0) continue;
    const reason = Claims.explain(statement).reason;
    droppedBy[reason] = (droppedBy[reason] || 0) + 1;
    dropped.push(statement);
  }
  out.liar = {statements: statements.length, kept_share: 1 - dropped.length / statements.length,
              dropped_by: droppedBy};
  const show = Number(option('show', 0));
  if (show) console.error(dropped.slice(0, show).join('\n'));
}
const fixture = option('fixture', path.join(repo, 'tests', 'extension', 'fixtures', 'non_claims.json'));
const sentences = JSON.parse(fs.readFileSync(fixture, 'utf8')).sentences;
const kept = sentences.filter((s) => Claims.claimsOf(s).length > 0);
out.fixture = {sentences: sentences.length, dropped_share: 1 - kept.length / sentences.length, kept};
console.log(JSON.stringify(out));
