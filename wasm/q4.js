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

  const CONFIG_FIELDS = ['numClasses', 'batchSize', 'epochs', 'quantized', 'augment', 'threads', 'seed',
    'learningRate', 'weightDecay', 'beta1', 'beta2', 'adamEps', 'clipNorm', 'tanhBound', 'cosineTMax', 'dropout'];

  /** The paper's recipe (PAPER.md). */
  const PAPER_CONFIG = {
    numClasses: 10, batchSize: 128, epochs: 150, quantized: 1, augment: 1, threads: 1, seed: 0,
    learningRate: 1e-3, weightDecay: 5e-4, beta1: 0.9, beta2: 0.999, adamEps: 1e-8, clipNorm: 0.5,
    tanhBound: 3, cosineTMax: 100, dropout: 0.5,
  };

  class Engine {
    constructor(module, memory, threaded) {
      this.M = module;
      this.memory = memory; // the shared memory of the threaded build, else null
      this.threaded = threaded;
      this.sources = new Map();
      this.nextSource = 1;
      this.data = -1;
      this.session = -1;
      this.numClasses = 10;
      this.kernels = module.UTF8ToString(module._q4w_kernels());
      module.q4ReadSource = (id, pointer, size) => this._readSource(id, pointer, size);
    }

    /** A fresh view of the heap (it may have grown, possibly in another thread). */
    heap() { return this.memory ? new Uint8Array(this.memory.buffer) : this.M.HEAPU8; }
    heapF64() { return this.memory ? new Float64Array(this.memory.buffer) : this.M.HEAPF64; }
    heapI32() { return this.memory ? new Int32Array(this.memory.buffer) : this.M.HEAP32; }
    heapF32() { return this.memory ? new Float32Array(this.memory.buffer) : this.M.HEAPF32; }
    memoryBytes() { return this.heap().length; }

    _check(result) {
      if (result < 0) throw new Q4Error(this.M.UTF8ToString(this.M._q4w_last_error()), -result);
      return result;
    }

    _doubles(count) { return this.M._malloc(8 * count); }
    _readDoubles(pointer, count) { return Array.from(this.heapF64().subarray(pointer / 8, pointer / 8 + count)); }

    _string(text) {
      const size = this.M.lengthBytesUTF8(text) + 1;
      const pointer = this.M._malloc(size);
      this.M.stringToUTF8(text, pointer, size);
      return pointer;
    }

    _readSource(id, pointer, size) {
      const s = this.sources.get(id);
      if (!s) return -1;
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
    }

    /**
     * Loads CIFAR from files: [{name, blob} | {name, bytes}] (official shards, label-name files,
     * or an official .tar.gz/.tar). kind: 10 or 100. Returns {kind, classes, train, test, names}.
     * A failed file leaves what was loaded before; the error names the file.
     */
    loadData(files, kind = 10, { requireComplete = false, onProgress = null } = {}) {
      const handle = this._check(this.M._q4w_cifar_begin(kind)); // the old data stays until this succeeds
      try {
        for (const file of files) {
          const id = this.nextSource++;
          const size = file.bytes ? file.bytes.length : file.blob.size;
          this.sources.set(id, {
            bytes: file.bytes, blob: file.blob, size, offset: 0,
            onProgress: onProgress ? (done, total) => onProgress(file.name, done, total) : null,
          });
          const name = this._string(file.name);
          try {
            this._check(this.M._q4w_cifar_add(handle, name, id, size));
          } finally {
            this.M._free(name);
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

    dataInfo() {
      const out = this._doubles(5);
      this._check(this.M._q4w_cifar_info(this.data, out));
      const [kind, classes, train, test, shards] = this._readDoubles(out, 5);
      this.M._free(out);
      const names = [];
      for (let c = 0; c < classes; c++) names.push(this.M.UTF8ToString(this.M._q4w_cifar_class_name(this.data, c)));
      return { kind, classes, train, test, shards, names };
    }

    /** Test image i as 3072 bytes (R plane, G plane, B plane) and its label. */
    testImage(i) {
      const p = this.M._q4w_cifar_test_image(this.data, i);
      return p ? this.heap().slice(p, p + 3072) : null;
    }
    testLabel(i) { return this.M._q4w_cifar_test_label(this.data, i); }

    /** Creates the training session (config: PAPER_CONFIG fields; limits: first N images, 0 = all). */
    createSession(config, trainLimit = 0, testLimit = 0) {
      if (this.data < 0) throw new Q4Error('load data first', 8);
      if (this.session >= 0) this.destroySession();
      const c = { ...PAPER_CONFIG, ...config };
      const p = this._doubles(16);
      this.heapF64().set(CONFIG_FIELDS.map((k) => Number(c[k])), p / 8);
      try {
        this.session = this._check(this.M._q4w_session_create(this.data, p, trainLimit, testLimit));
      } finally {
        this.M._free(p);
      }
      this.numClasses = c.numClasses;
      this.config = c;
      return this.progress();
    }

    destroySession() {
      if (this.session >= 0) this.M._q4w_session_destroy(this.session);
      this.session = -1;
    }

    setThreads(n) { this._check(this.M._q4w_set_threads(this.session, n)); this.config.threads = n; }

    _progress(call) {
      const p = this._doubles(10);
      try {
        this._check(call(p));
        const v = this._readDoubles(p, 10);
        return {
          epoch: v[0], stepInEpoch: v[1], stepsPerEpoch: v[2], globalStep: v[3], epochDone: !!v[4],
          lastLoss: v[5], epochLoss: v[6], epochAccuracy: v[7], learningRate: v[8], imagesSeen: v[9],
        };
      } finally {
        this.M._free(p);
      }
    }

    /** Runs up to `steps` training steps (stops at the end of an epoch). */
    train(steps = 1) { return this._progress((p) => this.M._q4w_train(this.session, steps, p)); }
    progress() { return this._progress((p) => this.M._q4w_progress(this.session, p)); }

    /** Test-set evaluation; `epoch` (1-based, 0 = none) records it for the best accuracy. */
    evaluate(epoch = 0, predictions = 0) {
      const k = this.numClasses;
      const out = this._doubles(7 + 2 * k), confusion = this.M._malloc(4 * k * k);
      const pred = predictions ? this.M._malloc(predictions) : 0;
      try {
        this._check(this.M._q4w_evaluate(this.session, epoch, out, confusion, pred, predictions));
        const v = this._readDoubles(out, 7 + 2 * k);
        const c = Array.from(this.heapI32().subarray(confusion / 4, confusion / 4 + k * k));
        return {
          count: v[0], correct: v[1], accuracy: v[2], loss: v[3], best: v[5], bestEpoch: v[6],
          classTotal: v.slice(7, 7 + k), classCorrect: v.slice(7 + k, 7 + 2 * k), confusion: c,
          predictions: pred ? Array.from(this.heap().subarray(pred, pred + predictions)) : [],
        };
      } finally {
        this.M._free(out);
        this.M._free(confusion);
        if (pred) this.M._free(pred);
      }
    }

    /** Per quantized layer: {rows, cols, scale, unique, histogram[15]} (levels -7..7). */
    layerStats() {
      const out = this._doubles(8 * 19);
      try {
        this._check(this.M._q4w_layer_stats(this.session, out));
        const v = this._readDoubles(out, 8 * 19);
        const names = ['conv1', 'conv2', 'conv3', 'conv4', 'conv5', 'conv6', 'fc1', 'fc2'];
        return names.map((name, i) => ({
          name, rows: v[i * 19], cols: v[i * 19 + 1], scale: v[i * 19 + 2], unique: v[i * 19 + 3],
          histogram: v.slice(i * 19 + 4, i * 19 + 19),
        }));
      } finally {
        this.M._free(out);
      }
    }

    /** Time per phase since the last reset: {memoryBytes, parameters, steps, images, phases[]} */
    profile(reset = false) {
      const out = this._doubles(4 + 64);
      try {
        const phases = this._check(this.M._q4w_profile(this.session, out, reset ? 1 : 0));
        const v = this._readDoubles(out, 4 + 2 * phases);
        const list = [];
        for (let i = 0; i < phases; i++) {
          list.push({ name: this.M.UTF8ToString(this.M._q4w_phase_name(this.session, i)), seconds: v[4 + 2 * i],
            flopsPerImage: v[5 + 2 * i] });
        }
        return { memoryBytes: v[0], parameters: v[1], steps: v[2], images: v[3], phases: list };
      } finally {
        this.M._free(out);
      }
    }

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

    /** What a checkpoint holds: {config, trainCount, testCount, epoch, stepInEpoch, globalStep}. */
    checkpointInfo(bytes) {
      const out = this._doubles(21);
      try {
        this._withBytes(bytes, (p) => this._check(this.M._q4w_checkpoint_info(p, bytes.length, out)));
        const v = this._readDoubles(out, 21);
        const config = {};
        CONFIG_FIELDS.forEach((k, i) => { config[k] = v[i]; });
        return { config, trainCount: v[16], testCount: v[17], epoch: v[18], stepInEpoch: v[19], globalStep: v[20] };
      } finally {
        this.M._free(out);
      }
    }

    /** Loads a checkpoint into the current session (made with the checkpoint's config). */
    load(bytes) { this._withBytes(bytes, (p) => this._check(this.M._q4w_load(this.session, p, bytes.length))); }

    /** The parameters as a Float32Array copy (tests). */
    parameters() {
      const out = this._doubles(2);
      try {
        this._check(this.M._q4w_parameters(this.session, out));
        const [pointer, count] = this._readDoubles(out, 2);
        return this.heapF32().slice(pointer / 4, pointer / 4 + count);
      } finally {
        this.M._free(out);
      }
    }
  }

  /**
   * Loads the engine. base: URL of the folder with q4-mt.js / q4-st.js. Threads need a
   * cross-origin isolated context (SharedArrayBuffer); otherwise the single-threaded build
   * loads and `reason` says why.
   */
  async function load(base, { forceSingleThread = false } = {}) {
    const isolated = typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated &&
      typeof SharedArrayBuffer !== 'undefined';
    const threaded = isolated && !forceSingleThread;
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
    engine.maxThreads = threaded ? Math.min(root.navigator.hardwareConcurrency || 2, 16) : 1;
    engine.reason = threaded ? 'threads on' : (forceSingleThread ? 'one thread requested'
      : 'one thread: the page is not cross-origin isolated (serve it with COOP/COEP headers for threads)');
    return engine;
  }

  root.Q4 = { load, Engine, Q4Error, PAPER_CONFIG, CONFIG_FIELDS };
})(typeof self !== 'undefined' ? self : globalThis);
