// Runs the TF.js edge export in Node with the pure-JS @tensorflow/tfjs (CPU
// backend; no tfjs-node, whose native binary cannot be downloaded everywhere).
//
//   node edge/tfjs_predict.mjs --model <dir with model.json> --rows rows.json \
//        [--out out.json] [--mode batch|single] [--warmup 5]
//
// rows.json: a JSON list of rows, each {"<feature>": value, ...} with every
// input of the model's signature (the same raw features as serving_default).
// Output JSON: {"outputs": [[p], ...], "mode", "batch_ms" (batch mode: one call
// for all rows), "per_row_ms" (single mode: one call per row)}.
//
// The model is read from disk through a custom IOHandler, so the same
// model.json and shards load unchanged in a browser with tf.loadGraphModel(url).
import fs from 'node:fs';
import path from 'node:path';
import {performance} from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs';

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
// TF.js has no int64: int64 inputs run as int32 (tfjs-converter does the same for weights).
const DTYPES = {DT_FLOAT: 'float32', DT_INT64: 'int32', DT_INT32: 'int32', DT_STRING: 'string', DT_BOOL: 'bool'};

function fail(message) {
  process.stderr.write(`error: ${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = {mode: 'batch', warmup: '3'};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!['model', 'rows', 'out', 'mode', 'warmup'].includes(key) || argv[i + 1] === undefined) {
      fail(`unknown or incomplete argument ${argv[i]}; usage: --model DIR --rows FILE [--out FILE] ` +
           '[--mode batch|single] [--warmup N]');
    }
    args[key] = argv[i + 1];
  }
  if (!args.model || !args.rows) fail('--model and --rows are required');
  if (!['batch', 'single'].includes(args.mode)) fail(`--mode must be batch or single, got ${args.mode}`);
  return args;
}

/** An IOHandler reading model.json and its weight shards from a directory. */
export function fileHandler(dir) {
  const modelJsonPath = path.join(dir, 'model.json');
  if (!fs.existsSync(modelJsonPath)) fail(`${modelJsonPath}: no such file (expected a TF.js graph model)`);
  const modelJson = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8'));
  return {
    load: async () => tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
      const specs = [];
      const buffers = [];
      for (const group of manifest) {
        for (const shard of group.paths) buffers.push(fs.readFileSync(path.join(dir, shard)));
        specs.push(...group.weights);
      }
      const all = Buffer.concat(buffers);
      return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
    }),
  };
}

/**
 * The signature's real inputs. The converter keys them by tensor name
 * ('fare:0'); the tensor is named after the raw feature. Resource inputs are
 * the vocabulary hash tables, fed by TF.js itself from the model initializer.
 */
function signatureInputs(model) {
  const inputs = model.signature?.inputs ?? {};
  return Object.entries(inputs)
      .filter(([, spec]) => spec.dtype !== 'DT_RESOURCE')
      .map(([key, spec]) => ({key: key.replace(/:0$/, ''), tensorName: spec.name.replace(/:0$/, ''),
                              dtype: DTYPES[spec.dtype]}));
}

function outputName(model) {
  const outputs = Object.entries(model.signature?.outputs ?? {});
  const chosen = outputs.find(([key]) => key === 'outputs') ?? (outputs.length === 1 ? outputs[0] : null);
  if (!chosen) fail(`the model has no 'outputs' output (outputs: ${outputs.map(([k]) => k).join(', ')})`);
  return chosen[1].name;
}

/** Columnar tensors from rows, checked against the signature (names the row and feature). */
function toTensors(rows, inputs, offset = 0) {
  const feeds = {};
  for (const input of inputs) {
    const values = rows.map((row, i) => {
      const value = row[input.key];
      const where = `row ${offset + i}, feature '${input.key}'`;
      if (value === undefined || value === null) fail(`${where}: missing (every input is required)`);
      if (input.dtype === 'string') {
        if (typeof value !== 'string') fail(`${where}: expected a string, got ${JSON.stringify(value)}`);
      } else if (typeof value !== 'number' || !Number.isFinite(value)) {
        fail(`${where}: expected a finite number, got ${JSON.stringify(value)}`);
      } else if (input.dtype === 'int32' && (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX)) {
        fail(`${where}: expected an integer in the int32 range, got ${value}`);
      }
      return value;
    });
    feeds[input.tensorName] = tf.tensor(values, [values.length], input.dtype);
  }
  return feeds;
}

async function predict(model, feeds, output) {
  const result = await model.executeAsync(feeds, output);
  const values = await result.array();
  tf.dispose([result, ...Object.values(feeds)]);
  return values;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const rows = JSON.parse(fs.readFileSync(args.rows, 'utf8'));
  if (!Array.isArray(rows) || rows.length === 0) fail(`${args.rows}: expected a non-empty JSON list of rows`);
  await tf.setBackend('cpu');
  const model = await tf.loadGraphModel(fileHandler(args.model));
  const inputs = signatureInputs(model);
  const output = outputName(model);
  const warmup = Math.min(Number(args.warmup), rows.length);
  for (let i = 0; i < warmup; i++) await predict(model, toTensors([rows[i]], inputs, i), output);
  const result = {mode: args.mode, backend: tf.getBackend(), tfjs: tf.version.tfjs};
  if (args.mode === 'batch') {
    const feeds = toTensors(rows, inputs);
    const start = performance.now();
    result.outputs = await predict(model, feeds, output);
    result.batch_ms = performance.now() - start;
  } else {
    result.outputs = [];
    result.per_row_ms = [];
    for (let i = 0; i < rows.length; i++) {
      const feeds = toTensors([rows[i]], inputs, i);
      const start = performance.now();
      const [value] = await predict(model, feeds, output);
      result.per_row_ms.push(performance.now() - start);
      result.outputs.push(value);
    }
  }
  const text = JSON.stringify(result);
  if (args.out) fs.writeFileSync(args.out, text);
  else process.stdout.write(text + '\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => fail(err.stack || String(err)));
}
