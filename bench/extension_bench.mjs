// Per-statement latency of bundled extensions' models in Node (pure-JS TF.js, CPU backend),
// through the extension's own scorer.js: one statement per call, as a user checks them.
//
//   node bench/extension_bench.mjs --statements statements.json [--rounds 3] <extension_dir>...
//
// The extensions' calls are interleaved (statement by statement) so that a busy machine
// slows them alike. Prints one JSON object: {<extension_dir>: {median_ms, p90_ms, mean_ms}}.
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {performance} from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';
import {fileHandler} from '../edge/tfjs_predict.mjs';

const require = createRequire(import.meta.url);
const {StatementScorer} = require('../extension/scorer.js');

function parse(argv) {
  const args = {rounds: 3, dirs: []};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--statements') args.statements = argv[++i];
    else if (argv[i] === '--rounds') args.rounds = Number(argv[++i]);
    else args.dirs.push(argv[i]);
  }
  if (!args.statements || args.dirs.length === 0 || !(args.rounds >= 1)) {
    console.error('usage: node bench/extension_bench.mjs --statements FILE [--rounds N] <extension_dir>...');
    process.exit(2);
  }
  return args;
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const args = parse(process.argv.slice(2));
const statements = JSON.parse(fs.readFileSync(args.statements, 'utf8'));
const scorers = [];
for (const dir of args.dirs) {
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'model', 'extension_config.json'), 'utf8'));
  scorers.push(await StatementScorer.load(tf, fileHandler(path.join(dir, 'model')), config));
}
const times = scorers.map(() => []);
for (let round = 0; round < args.rounds; round++) {
  for (const statement of statements) {
    for (let i = 0; i < scorers.length; i++) {
      const start = performance.now();
      await scorers[i].score([statement]);
      if (round > 0 || args.rounds === 1) times[i].push(performance.now() - start);  // round 0 warms up
    }
  }
}
const result = {};
args.dirs.forEach((dir, i) => {
  const sorted = [...times[i]].sort((a, b) => a - b);
  result[dir] = {median_ms: percentile(sorted, 0.5), p90_ms: percentile(sorted, 0.9),
                 mean_ms: sorted.reduce((a, b) => a + b, 0) / sorted.length};
});
console.log(JSON.stringify(result));
