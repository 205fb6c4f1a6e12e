/**
 * StatementScorer: runs the bundled TF.js graph model on statements.
 *
 * Why a separate file: the same code runs in the extension's service worker
 * and in Node (tests), so what is tested is what ships. It only needs a global
 * `tf` (tf.min.js in the extension, @tensorflow/tfjs in Node) and a way to
 * load the model (a URL in the browser, an IOHandler in Node).
 *
 * model/extension_config.json (written by `make extension` from the SavedModel
 * and the dataset config) says which input carries the statement, the other
 * inputs' dtypes (fed as missing: pages carry no speaker metadata), the output
 * name and the class names. The default bundle is the statement-only
 * specialisation (edge/statement_only.py): the metadata inputs are already
 * bound to their missing value inside the graph, so `inputs` lists only the
 * statement and nothing else is fed.
 *
 * `lean` (edge/calibration.py, written by the bundler) turns the distribution
 * into what a reader asks: P(half-true or better) = the sum over the config's
 * positive classes, mapped through the calibration fitted on the training
 * file's folds, shown as "leans true 68 %" when its confidence reaches the
 * threshold chosen there, else "not sure".
 */
(function (root) {
  'use strict';

  const MISSING = {string: '', int64: 0, int32: 0, float32: 0};

  /**
   * ASCII lower-casing and the typographic apostrophe (U+2019) folded to "'",
   * exactly what the Transform graph does first. TF.js has no StringLower op, and
   * reads regex patterns lower-cased and as Latin-1, so the edge model expects
   * text already prepared this way by its caller.
   */
  function asciiLower(text) {
    return text.replace(/[A-Z]+/g, (m) => m.toLowerCase()).replace(/\u2019/g, "'");
  }

  /** np.interp: linear between breakpoints, the end values beyond them. */
  function interpolate(v, xs, ys) {
    if (v <= xs[0]) return ys[0];
    const last = xs.length - 1;
    if (v >= xs[last]) return ys[last];
    let lo = 0;
    let hi = last;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] <= v) lo = mid; else hi = mid;
    }
    return ys[lo] + (ys[hi] - ys[lo]) * (v - xs[lo]) / (xs[hi] - xs[lo]);
  }

  /** The lean of a distribution: {side, probability, confidence, sure, state, text, calibrated};
   * ``state`` is the side when sure, else 'unsure' (the badge's and the popup's data-lean). */
  function leanOf(probabilities, lean) {
    const raw = lean.positive_indices.reduce((sum, i) => sum + probabilities[i], 0);
    const calibration = lean.calibration;
    const p = calibration ? interpolate(raw, calibration.x, calibration.y) : raw;
    const side = p >= 0.5 ? lean.positive_label : lean.negative_label;
    const confidence = Math.max(p, 1 - p);
    const sure = lean.threshold === null || lean.threshold === undefined || confidence >= lean.threshold;
    const percent = Math.round(confidence * 100);
    return {side, probability: p, raw_probability: raw, confidence, sure, state: sure ? side : 'unsure',
            calibrated: Boolean(calibration), text: sure ? `leans ${side} ${percent} %` : 'not sure'};
  }

  class StatementScorer {
    constructor(tf, model, config) {
      this.tf = tf;
      this.model = model;
      this.config = config;
    }

    /** Loads model.json (URL string or tf.io.IOHandler) and the config object. */
    static async load(tf, modelSource, config) {
      await tf.setBackend('cpu');
      await tf.ready();
      const model = await tf.loadGraphModel(modelSource);
      const scorer = new StatementScorer(tf, model, config);
      await scorer.score(['warm up']);  // first call compiles the graph executor
      return scorer;
    }

    /** Feeds: the statements as the text input, every other input as missing. */
    feeds(statements) {
      const tf = this.tf;
      const n = statements.length;
      const feeds = {};
      for (const input of this.config.inputs) {
        if (input.name === this.config.text_feature) {
          const texts = this.config.ascii_lowercase ? statements.map(asciiLower) : statements;
          feeds[input.name] = tf.tensor(texts, [n], 'string');
        } else {
          if (!(input.dtype in MISSING)) {
            throw new Error(`input '${input.name}': unsupported dtype '${input.dtype}'`);
          }
          const dtype = input.dtype === 'int64' ? 'int32' : input.dtype;
          feeds[input.name] = tf.tensor(new Array(n).fill(MISSING[input.dtype]), [n], dtype);
        }
      }
      return feeds;
    }

    /**
     * Scores statements; returns one {label, confidence, probabilities} each.
     * A single sigmoid output is read as P(positive class).
     */
    async score(statements) {
      if (!Array.isArray(statements) || statements.length === 0) {
        throw new Error('score: expected a non-empty array of statements');
      }
      const tf = this.tf;
      const feeds = this.feeds(statements.map((s) => String(s)));
      let output;
      try {
        output = await this.model.executeAsync(feeds, this.config.output_node || undefined);
      } finally {
        Object.values(feeds).forEach((t) => t.dispose());
      }
      const tensor = Array.isArray(output) ? output[0] : output;
      const values = await tensor.array();
      (Array.isArray(output) ? output : [output]).forEach((t) => t.dispose());
      return values.map((row) => this.describe(Array.isArray(row) ? row : [row]));
    }

    describe(row) {
      const classes = this.config.classes;
      const probabilities = row.length === 1 ? [1 - row[0], row[0]] : row;
      let best = 0;
      probabilities.forEach((p, i) => { if (p > probabilities[best]) best = i; });
      const result = {label: classes[best], confidence: probabilities[best], probabilities, raw: row};
      if (this.config.lean) result.lean = leanOf(probabilities, this.config.lean);
      return result;
    }
  }

  StatementScorer.asciiLower = asciiLower;
  StatementScorer.interpolate = interpolate;
  StatementScorer.leanOf = leanOf;
  root.StatementScorer = StatementScorer;
  if (typeof module !== 'undefined' && module.exports) module.exports = {StatementScorer};
})(typeof self !== 'undefined' ? self : globalThis);
