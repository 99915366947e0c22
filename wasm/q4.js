// q4.js - the JavaScript face of the engine's WebAssembly build: loads q4-mt (SIMD128 +
// pthreads, when the page is cross-origin isolated) or q4-st (one thread), and wraps the
// exported C functions of wasm/bindings.c in an Engine object with plain JavaScript values.
// A classic script (it runs in a classic worker: Emscripten 3.1.6's pthread workers load the
// main script with importScripts), defining self.Q4. Every call throws Q4Error on failure.
(function (root) {
  'use strict';

  class Q4Error extends Error {
    constructor(message, status) {
      super(message);
      this.name = 'Q4Error';
      this.status = status;
    }
  }

  /** "name=value" lines for the engine's settings parser; a recipe goes first (it resets the others). */
  function settingsText(settings) {
    const entries = Object.entries(settings).filter(([, v]) => v !== undefined && v !== null && v !== '');
    entries.sort(([a], [b]) => (b === 'recipe') - (a === 'recipe'));
    return entries.map(([k, v]) => `${k}=${v}`).join('\n');
  }

  class Engine {
    constructor(module, memory, threaded) {
      this.M = module;
      this.memory = memory; // the shared memory of the threaded build, else null
      this.threaded = threaded;
      this.sources = new Map();
      this.nextSource = 1;
      this.data = -1;
      this.session = -1;
      this.model = -1; // an exported model loaded to be checked and asked (loadModel)
      this.kernels = module.UTF8ToString(module._q4w_kernels());
      /** The configuration table (core/include/q4.h): [{name, type, default, lowest, highest, choices, help, ...}] */
      this.fields = this._json(module._q4w_config_fields());
      module.q4ReadSource = (id, pointer, size) => this._readSource(id, pointer, size);
    }

    /** A fresh view of the heap (it may have grown, possibly in another thread). */
    heap() { return this.memory ? new Uint8Array(this.memory.buffer) : this.M.HEAPU8; }
    heapF64() { return this.memory ? new Float64Array(this.memory.buffer) : this.M.HEAPF64; }
    memoryBytes() { return this.heap().length; }

    _error() { return new Q4Error(this.M.UTF8ToString(this.M._q4w_last_error())); }
    _check(result) {
      if (result < 0) throw new Q4Error(this.M.UTF8ToString(this.M._q4w_last_error()), -result);
      return result;
    }
    /** The JSON text a q4w_ function returned (NULL: the error it left). */
    _json(pointer) {
      if (!pointer) throw this._error();
      return JSON.parse(this.M.UTF8ToString(pointer));
    }

    _doubles(count) { return this.M._malloc(8 * count); }
    _readDoubles(pointer, count) { return Array.from(this.heapF64().subarray(pointer / 8, pointer / 8 + count)); }

    _string(text) {
      const size = this.M.lengthBytesUTF8(text) + 1;
      const pointer = this.M._malloc(size);
      this.M.stringToUTF8(text, pointer, size);
      return pointer;
    }

    _withString(text, call) {
      const p = this._string(text);
      try {
        return call(p);
      } finally {
        this.M._free(p);
      }
    }

    // Called from C while a file is read: exceptions must not unwind through C frames (they
    // would leak what C holds), so a failure becomes -1 and C reports it as a read error.
    _readSource(id, pointer, size) {
      const s = this.sources.get(id);
      if (!s) return -1;
      try {
        const n = Math.min(size, s.size - s.offset);
        if (n <= 0) return 0;
        let chunk;
        if (s.bytes) {
          chunk = s.bytes.subarray(s.offset, s.offset + n);
        } else {
          // a File or Blob, read synchronously in slices (workers have FileReaderSync)
          chunk = new Uint8Array(new FileReaderSync().readAsArrayBuffer(s.blob.slice(s.offset, s.offset + n)));
        }
        this.heap().set(chunk, pointer);
        s.offset += chunk.length;
        if (s.onProgress) s.onProgress(s.offset, s.size);
        return chunk.length;
      } catch (e) {
        s.error = e && e.message ? e.message : String(e);
        return -1;
      }
    }

    /** The configuration these settings ({name: value}) make from the defaults; throws Q4Error naming a wrong one. */
    resolve(settings) {
      return this._withString(settingsText(settings), (p) => this._json(this.M._q4w_config_resolve(p)));
    }

    /**
     * Loads CIFAR from files: [{name, blob} | {name, bytes}] (official shards, label-name files,
     * or an official .tar.gz/.tar). kind: 10 or 100. Returns {kind, classes, train, test, shards, names}.
     * A failed file leaves what was loaded before; the error names the file.
     */
    loadData(files, kind = 10, { requireComplete = false, onProgress = null } = {}) {
      const handle = this._check(this.M._q4w_cifar_begin(kind)); // the old data stays until this succeeds
      try {
        for (const file of files) {
          const id = this.nextSource++;
          const size = file.bytes ? file.bytes.length : file.blob.size;
          const source = {
            bytes: file.bytes, blob: file.blob, size, offset: 0, error: null,
            onProgress: onProgress ? (done, total) => onProgress(file.name, done, total) : null,
          };
          this.sources.set(id, source);
          try {
            this._withString(file.name, (name) => {
              const result = this.M._q4w_cifar_add(handle, name, id, size);
              if (result < 0 && source.error) throw new Q4Error(`${file.name}: could not be read (${source.error})`, -result);
              return this._check(result);
            });
          } finally {
            this.sources.delete(id);
          }
        }
        this._check(this.M._q4w_cifar_finish(handle, requireComplete ? 1 : 0));
      } catch (e) {
        this.M._q4w_cifar_free(handle);
        throw e;
      }
      if (this.session >= 0) this.destroySession();
      if (this.data >= 0) this.M._q4w_cifar_free(this.data);
      this.data = handle;
      return this.dataInfo();
    }

    dataInfo() { return this._json(this.M._q4w_cifar_info(this.data)); }

    /** Test image i as 3072 bytes (R plane, G plane, B plane) and its label. */
    testImage(i) {
      const p = this.M._q4w_cifar_test_image(this.data, i);
      return p ? this.heap().slice(p, p + 3072) : null;
    }
    testLabel(i) { return this.M._q4w_cifar_test_label(this.data, i); }

    /**
     * Creates the training session from settings ({name: value}, over the defaults, which are the
     * paper's recipe), and loads a checkpoint into it if `checkpoint` (bytes) is given. The
     * session it replaces is kept until the new one is ready: on any error it stays as it was.
     * Returns the progress.
     */
    createSession(settings, checkpoint = null) {
      if (this.data < 0) throw new Q4Error('load data first', 8);
      const handle = this._withString(settingsText(settings),
        (p) => this._check(this.M._q4w_session_create(this.data, p)));
      if (checkpoint) {
        try {
          this._withBytes(checkpoint, (p) => this._check(this.M._q4w_load(handle, p, checkpoint.length)));
        } catch (e) {
          this.M._q4w_session_destroy(handle);
          throw e;
        }
      }
      this.destroySession();
      this.session = handle;
      this.config = this._json(this.M._q4w_session_config(this.session));
      return this.progress();
    }

    destroySession() {
      if (this.session >= 0) this.M._q4w_session_destroy(this.session);
      this.session = -1;
    }

    setThreads(n) { this._check(this.M._q4w_set_threads(this.session, n)); this.config.threads = n; }

    /** Runs up to `steps` training steps (stops at the end of an epoch): the progress, by the core's names. */
    train(steps = 1) { return this._json(this.M._q4w_train(this.session, steps)); }
    progress() { return this._json(this.M._q4w_progress(this.session)); }
    /** After an epoch finished: the test evaluation, best accuracy, layer statistics, profile (core's report). */
    endEpoch() { return this._json(this.M._q4w_end_epoch(this.session)); }
    /** A test-set evaluation outside the epoch cycle: {accuracy, loss, count, correct}. */
    evaluate() { return this._json(this.M._q4w_evaluate(this.session)); }
    /** Time per phase since the last reset: {steps, images, flops_per_image, phases: [{name, seconds, flops_per_image}]} */
    profile(reset = false) { return this._json(this.M._q4w_profile(this.session, reset ? 1 : 0)); }
    /** {parameters, memory_bytes, kernels} */
    sessionInfo() { return this._json(this.M._q4w_session_info(this.session)); }

    _bytesFrom(call) {
      const out = this._doubles(2);
      try {
        this._check(call(out));
        const [pointer, size] = this._readDoubles(out, 2);
        const copy = this.heap().slice(pointer, pointer + size);
        this.M._q4w_free(pointer);
        return copy;
      } finally {
        this.M._free(out);
      }
    }

    /** The full training state as a checkpoint (the native format). */
    save() { return this._bytesFrom((out) => this.M._q4w_save(this.session, out)); }
    /** The trained model: packed 4-bit weights plus FP32 biases and BatchNorm parameters. */
    exportModel() { return this._bytesFrom((out) => this.M._q4w_export(this.session, out)); }

    _withBytes(bytes, call) {
      const p = this.M._malloc(bytes.length || 1);
      this.heap().set(bytes, p);
      try {
        return call(p);
      } finally {
        this.M._free(p);
      }
    }

    /** What a checkpoint holds: {version, config, train_count, test_count, epoch, step_in_epoch, global_step, ...}. */
    checkpointInfo(bytes) {
      return this._withBytes(bytes, (p) => this._json(this.M._q4w_checkpoint_info(p, bytes.length)));
    }

    /** The run card of this session (JSON text): settings, data MD5s, state fingerprints. */
    card() {
      const p = this.M._q4w_card(this.session);
      if (!p) throw this._error();
      return this.M.UTF8ToString(p);
    }
    /** Goes on recording into a saved run's card (JSON text). */
    continueCard(text) { this._withString(text, (p) => this._check(this.M._q4w_card_continue(this.session, p))); }
    /** A run card's settings, once the loaded data is checked against its MD5s (throws naming the file). */
    cardSettings(text) { return this._withString(text, (p) => this._json(this.M._q4w_card_settings(this.data, p))); }
    /** Begins verifying a run card (JSON text) in this session, made with its settings: the core refuses a
     * card that cannot be honest and returns {step, stop, last, fingerprints, claims, done, identical, message, ...}. */
    verifyBegin(text, steps) { return this._withString(text, (p) => this._json(this.M._q4w_verify_begin(this.session, p, steps))); }
    /** Trains one step of the verification and compares what the card claims for it; the state as verifyBegin's. */
    verifyStep() { return this._json(this.M._q4w_verify_step(this.session)); }
    /** SHA-256 of the training state (64 hex digits), as run cards record it. */
    stateSha256() {
      const p = this.M._q4w_state_sha256(this.session);
      if (!p) throw this._error();
      return this.M.UTF8ToString(p);
    }

    /** The class probabilities for one image (3072 bytes: R, G, B planes of 32x32). */
    classify(pixels) {
      return this._withBytes(pixels, (p) => this._json(this.M._q4w_classify(this.session, p)));
    }
    /** conv1's 64 filters [64][3][3][3]: {scale, weights (FP32, as trained), quantized (as used)}. */
    conv1() { return this._json(this.M._q4w_conv1(this.session)); }

    /**
     * Loads an exported model (the bytes of q4train --export or Export 4-bit model) for evaluation and
     * questions, in place of the one loaded before (which stays on error). With a run card (JSON text)
     * the loaded data is checked against the card's MD5s and the model is evaluated as the card's run
     * evaluated it (its test images, arithmetic and test-time augmentation). Errors name the file
     * (modelName, cardName). Returns modelInfo().
     */
    loadModel(bytes, cardText = '', threads = 1, { modelName = 'the model', cardName = 'the run card' } = {}) {
      if (this.data < 0) throw new Q4Error('load data first', 8);
      const handle = this._withBytes(bytes, (p) => this._withString(cardText, (c) => this._withString(modelName,
        (m) => this._withString(cardName, (n) => this._check(this.M._q4w_model_load(this.data, p, bytes.length, threads, c, m, n))))));
      this.destroyModel();
      this.model = handle;
      return this.modelInfo();
    }
    destroyModel() {
      if (this.model >= 0) this.M._q4w_model_destroy(this.model);
      this.model = -1;
    }
    /** {classes, card, test_limit, augmented, exact, integer_eval} and with a card its claims:
     * {epochs, test_accuracy, tta_accuracy, engine, kernels} */
    modelInfo() { return this._json(this.M._q4w_model_info(this.model)); }
    /** Begins evaluating the loaded model on the test images, plainly or (after that) with the card's
     * test-time augmentation; evaluateModelStep goes on with it. */
    evaluateModelBegin(augmented = false) { this._check(this.M._q4w_model_evaluate_begin(this.model, this.data, augmented ? 1 : 0)); }
    /** At least `images` more test images of the evaluation begun: {evaluated, count, done}, and once
     * done {accuracy, loss, correct} too (exactly what one whole evaluation gives). */
    evaluateModelStep(images) { return this._json(this.M._q4w_model_evaluate_step(this.model, images)); }
    /** After the evaluations a card asks for: {same, message} ("AS CLAIMED: ..." or "DIFFERENT: ..."). */
    modelVerdict(cardName) { return this._withString(cardName, (p) => this._json(this.M._q4w_model_verdict(this.model, p))); }
    /** The loaded model's class probabilities for one image (3072 bytes). */
    classifyWithModel(pixels) {
      return this._withBytes(pixels, (p) => this._json(this.M._q4w_model_classify(this.model, p)));
    }

    /** Bytes the engine's heap has in use (what it allocated and has not freed). */
    memoryInUse() { return this.M._q4w_memory_in_use(); }
  }

  /**
   * Why this browser cannot run the threaded build, or null when it can. What the build needs
   * is tested, not a global's name: a cross-origin isolated context, Atomics, and a shared
   * WebAssembly.Memory that can be posted to another worker (the threads are workers that get
   * the memory by postMessage). WebKitGTK 2.50 isolates the page and creates shared memory but
   * refuses to post it (DataCloneError): it turns SharedArrayBuffer off.
   */
  function noThreadsReason() {
    if (typeof crossOriginIsolated === 'undefined' || !crossOriginIsolated)
      return 'the page is not cross-origin isolated (serve it with COOP/COEP headers for threads)';
    if (typeof Atomics === 'undefined') return 'this browser has no Atomics';
    const refused = 'this browser does not share memory between workers (its SharedArrayBuffer is turned off)';
    try {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
      if (Object.prototype.toString.call(memory.buffer) !== '[object SharedArrayBuffer]') return refused;
      const channel = new MessageChannel(); // posting serializes at once: a refusal throws here
      try {
        channel.port1.postMessage(memory);
      } finally {
        channel.port1.close();
        channel.port2.close();
      }
    } catch {
      return refused;
    }
    return null;
  }

  /**
   * The most threads worth offering: the cores the browser reports (at most 16), less those a
   * measurement shows do not pay. Each count from 3 up is timed on a fixed amount of arithmetic
   * (q4_threads_probe) and kept only if it saves at least half the time that perfect scaling
   * from the count kept last would save. WebKitGTK reports 4 cores on a 2-core machine.
   */
  function usefulThreads(probe, reported) {
    if (reported <= 2) return reported;
    let useful = 2;
    let time = probe(2);
    if (!(time > 0)) return reported;
    for (let t = 3; t <= reported; t++) {
      const s = probe(t);
      if (s > 0 && s <= time * (1 - 0.5 * (1 - useful / t))) {
        useful = t;
        time = s;
      }
    }
    return useful;
  }

  /**
   * Loads the engine. base: URL of the folder with q4-mt.js / q4-st.js. The threaded build
   * loads where the browser can run it; otherwise the single-threaded one, and `reason` says why.
   * forceSingleThread: the single-threaded build in any case; singleThreadReason: why (for `reason`).
   */
  async function load(base, { forceSingleThread = false, singleThreadReason = null } = {}) {
    const missing = noThreadsReason();
    const threaded = !missing && !forceSingleThread;
    const script = `${base}/${threaded ? 'q4-mt.js' : 'q4-st.js'}`;
    root.importScripts(script);
    let memory = null;
    const options = { locateFile: (file) => `${base}/${file}`, mainScriptUrlOrBlob: script };
    if (threaded) {
      memory = new WebAssembly.Memory({ initial: 1024, maximum: 32768, shared: true }); // 64 MB .. 2 GB
      options.wasmMemory = memory;
    }
    const module = await root.createQ4Module(options);
    const engine = new Engine(module, memory, threaded);
    engine.reportedCores = root.navigator.hardwareConcurrency || 2;
    engine.maxThreads = threaded ? usefulThreads((t) => module._q4w_threads_probe(t), Math.min(engine.reportedCores, 16)) : 1;
    engine.reason = threaded ? 'threads on'
      : `one thread: ${forceSingleThread ? singleThreadReason || 'requested' : missing}`;
    return engine;
  }

  root.Q4 = { load, Engine, Q4Error, settingsText, noThreadsReason, usefulThreads };
})(typeof self !== 'undefined' ? self : globalThis);
