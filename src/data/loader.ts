// Training batches and evaluation windows over a 1-D token stream.
//
// Vocabulary used below: N = number of tokens, T = block size (context length), B = batch
// size. A training example is a window of T+1 consecutive tokens: inputs are its first T,
// targets its last T (the inputs shifted by one). Every window lies inside [0, N).
import { Rng, fmix32 } from './rng.ts';

export type TokenArray = Uint16Array | Int32Array | Uint32Array | readonly number[];

export type BatchMode = 'random' | 'shuffled';

export interface BatchLoaderOptions {
  batchSize: number;
  blockSize: number;
  /**
   * 'shuffled' (default): each epoch cuts the stream into ⌊(N−1)/T⌋ contiguous, non-overlapping
   * chunks (at an epoch-random offset inside the leftover tokens), shuffles them and serves them
   * B at a time, so every token is seen once per epoch except the < B·T + T left over.
   * 'random': every row starts at a uniform random position in [0, N−T−1], independently.
   */
  mode?: BatchMode;
  seed?: number;
}

export interface Batch {
  /** B×T row-major token ids. */
  inputs: Int32Array;
  /** B×T row-major; targets[b*T + t] = inputs[b*T + t + 1] within a row, and the next token after the row's end. */
  targets: Int32Array;
  /** Where row b starts in the token stream. */
  starts: number[];
  /** 0-based epoch of this batch and its global step (batches served before it). */
  epoch: number;
  step: number;
}

/** JSON-serialisable position of a BatchLoader; restore it to continue exactly. */
export interface BatchLoaderState {
  kind: 'BatchLoader';
  version: 1;
  mode: BatchMode;
  seed: number;
  batchSize: number;
  blockSize: number;
  numTokens: number;
  /** fmix32-based checksum of the token stream, so a state is not restored onto other data. */
  tokensChecksum: number;
  /** Number of batches already served. */
  step: number;
}

/** Order-sensitive 32-bit checksum of a token stream (one pass, ~5 ms for 2.5 M tokens). */
export function tokensChecksum(tokens: TokenArray): number {
  let h = tokens.length >>> 0;
  for (let i = 0; i < tokens.length; i++) h = fmix32((h ^ tokens[i]!) + i);
  return h;
}

export class BatchLoader {
  readonly batchSize: number;
  readonly blockSize: number;
  readonly mode: BatchMode;
  readonly seed: number;
  /** Number of non-overlapping (T+1)-windows per epoch: ⌊(N−1)/T⌋. */
  readonly chunksPerEpoch: number;
  /**
   * Batches in one epoch, the same in both modes: ⌊⌊(N−1)/T⌋ / B⌋. One epoch therefore serves
   * batchesPerEpoch·B·T target tokens, which is the training set size minus fewer than B·T + T
   * tokens; in 'random' mode an epoch is just that many batches.
   */
  readonly batchesPerEpoch: number;
  private readonly tokens: TokenArray;
  private readonly checksum: number;
  private step = 0;
  private permEpoch = -1;
  private perm: Uint32Array = new Uint32Array(0);
  private permOffset = 0;

  constructor(tokens: TokenArray, opts: BatchLoaderOptions) {
    const { batchSize: B, blockSize: T } = opts;
    if (!Number.isInteger(B) || B < 1) throw new RangeError(`batchSize must be a positive integer, got ${B}`);
    if (!Number.isInteger(T) || T < 1) throw new RangeError(`blockSize must be a positive integer, got ${T}`);
    const seed = opts.seed ?? 0;
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    const N = tokens.length;
    this.chunksPerEpoch = N > T ? Math.floor((N - 1) / T) : 0;
    if (this.chunksPerEpoch < B) {
      throw new RangeError(
        `The token stream is too short for one batch: ${N} tokens give ${this.chunksPerEpoch} windows of ` +
          `${T}+1 tokens but batchSize is ${B} (need at least ${B * T + 1} tokens). ` +
          `Use a smaller batchSize/blockSize or a larger split.`,
      );
    }
    this.tokens = tokens;
    this.batchSize = B;
    this.blockSize = T;
    this.mode = opts.mode ?? 'shuffled';
    if (this.mode !== 'random' && this.mode !== 'shuffled') throw new RangeError(`unknown mode ${String(this.mode)}`);
    this.seed = seed;
    this.batchesPerEpoch = Math.floor(this.chunksPerEpoch / B);
    this.checksum = tokensChecksum(tokens);
  }

  /** Epoch of the next batch. */
  get epoch(): number {
    return Math.floor(this.step / this.batchesPerEpoch);
  }

  /** Batches served so far. */
  get position(): number {
    return this.step;
  }

  next(): Batch {
    const b = this.batchAt(this.step);
    this.step++;
    return b;
  }

  /** The batch served at global step `step` (pure: depends only on seed, data and step). */
  batchAt(step: number): Batch {
    if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer, got ${step}`);
    const B = this.batchSize;
    const starts = new Array<number>(B);
    const epoch = Math.floor(step / this.batchesPerEpoch);
    if (this.mode === 'random') {
      // One stream per step: batches can be computed in any order and resumed from a step count.
      const rng = new Rng(this.seed, 0x72616e64, step);
      const span = this.tokens.length - this.blockSize; // starts in [0, N−T−1]
      for (let b = 0; b < B; b++) starts[b] = rng.int(span);
    } else {
      this.preparePermutation(epoch);
      const k = step - epoch * this.batchesPerEpoch;
      for (let b = 0; b < B; b++) starts[b] = this.permOffset + this.perm[k * B + b]! * this.blockSize;
    }
    return this.fill(starts, epoch, step);
  }

  private preparePermutation(epoch: number): void {
    if (epoch === this.permEpoch) return;
    const rng = new Rng(this.seed, 0x73687566, epoch);
    const slack = this.tokens.length - 1 - this.chunksPerEpoch * this.blockSize; // in [0, T)
    this.permOffset = rng.int(slack + 1);
    const perm = new Uint32Array(this.chunksPerEpoch);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    this.perm = rng.shuffle(perm);
    this.permEpoch = epoch;
  }

  private fill(starts: number[], epoch: number, step: number): Batch {
    const T = this.blockSize;
    const inputs = new Int32Array(this.batchSize * T);
    const targets = new Int32Array(this.batchSize * T);
    const tok = this.tokens;
    for (let b = 0; b < starts.length; b++) {
      const s = starts[b]!;
      for (let t = 0; t < T; t++) {
        inputs[b * T + t] = tok[s + t]!;
        targets[b * T + t] = tok[s + t + 1]!;
      }
    }
    return { inputs, targets, starts, epoch, step };
  }

  state(): BatchLoaderState {
    return {
      kind: 'BatchLoader',
      version: 1,
      mode: this.mode,
      seed: this.seed,
      batchSize: this.batchSize,
      blockSize: this.blockSize,
      numTokens: this.tokens.length,
      tokensChecksum: this.checksum,
      step: this.step,
    };
  }

  /** Continue from a saved state; throws if it was saved for other data or settings. */
  restore(state: BatchLoaderState): void {
    checkState(state);
    const mine = this.state();
    for (const k of ['mode', 'seed', 'batchSize', 'blockSize', 'numTokens', 'tokensChecksum'] as const) {
      if (state[k] !== mine[k]) {
        throw new Error(
          `Cannot restore BatchLoader state: it was saved with ${k}=${state[k]} but this loader has ${k}=${mine[k]}` +
            (k === 'numTokens' || k === 'tokensChecksum'
              ? ' (different token data: another split, tokenizer or detokenize option?). '
              : '. ') +
            'Resume with the same data and options, or start a fresh loader.',
        );
      }
    }
    this.step = state.step;
  }

  static fromState(tokens: TokenArray, state: BatchLoaderState): BatchLoader {
    checkState(state);
    const loader = new BatchLoader(tokens, {
      batchSize: state.batchSize,
      blockSize: state.blockSize,
      mode: state.mode,
      seed: state.seed,
    });
    loader.restore(state);
    return loader;
  }
}

function checkState(state: BatchLoaderState): void {
  if (!state || state.kind !== 'BatchLoader') throw new Error('Not a BatchLoader state (missing kind: "BatchLoader").');
  if (state.version !== 1) {
    throw new Error(`BatchLoader state has version ${String(state.version)}; this build reads version 1. Start a fresh loader.`);
  }
  if (!Number.isSafeInteger(state.step) || state.step < 0) throw new Error(`BatchLoader state has a bad step: ${state.step}`);
}

// ---------------------------------------------------------------------------------------------
// Evaluation: fixed, non-overlapping windows over the whole split.

/** Target value for positions that must not be scored (padding of the last window/batch). */
export const IGNORE_INDEX = -1;

export interface EvalWindow {
  /** First input position; the window predicts tokens start+1 … start+length. */
  start: number;
  /** Number of scored positions, = T except possibly for the last window. */
  length: number;
}

export type LastWindow = 'pad' | 'drop';

/**
 * Windows [start, start+T] with start = 0, T, 2T, …: each token from position 1 to N−1 is a
 * target exactly once (no overlap, so each prediction sees between 0 and T−1 tokens of context).
 * The (N−1) mod T tokens left at the end form one shorter window when lastWindow = 'pad'
 * (default; all N−1 targets scored), or are not scored when lastWindow = 'drop'.
 */
export function evalWindows(numTokens: number, blockSize: number, lastWindow: LastWindow = 'pad'): EvalWindow[] {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`blockSize must be a positive integer, got ${blockSize}`);
  if (numTokens < 2) {
    throw new RangeError(`An evaluation split needs at least 2 tokens (one input, one target); got ${numTokens}.`);
  }
  const predictable = numTokens - 1;
  const full = Math.floor(predictable / blockSize);
  const windows: EvalWindow[] = [];
  for (let i = 0; i < full; i++) windows.push({ start: i * blockSize, length: blockSize });
  const rest = predictable - full * blockSize;
  if (rest > 0 && lastWindow === 'pad') windows.push({ start: full * blockSize, length: rest });
  return windows;
}

export interface EvalBatch {
  /** B×T; padded positions hold padId. */
  inputs: Int32Array;
  /** B×T; padded positions hold IGNORE_INDEX (−1). */
  targets: Int32Array;
  /** Rows that hold a window (the last batch can have fewer than B). */
  rows: number;
  /** Number of targets ≠ IGNORE_INDEX in this batch. */
  scored: number;
}

export interface EvalBatchOptions {
  batchSize: number;
  blockSize: number;
  lastWindow?: LastWindow;
  /** Input id written into padded positions (never scored; causal models never look ahead). Default 0. */
  padId?: number;
  /**
   * Score only this many of the split's windows, spread evenly over it (window ⌊i·N/W⌋ of the N),
   * so a quick evaluation samples every part of the split, always the same targets. Default: all.
   */
  windows?: number;
}

/** `count` of `windows`, evenly spread (all of them when count is absent or not smaller). */
export function spreadWindows(windows: EvalWindow[], count?: number): EvalWindow[] {
  if (count === undefined || count >= windows.length) return windows;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`windows must be a positive integer, got ${count}`);
  return Array.from({ length: count }, (_, i) => windows[Math.floor((i * windows.length) / count)]!);
}

/**
 * Pack evalWindows into fixed-shape B×T batches, padding the tail with IGNORE_INDEX targets.
 * Average the loss over `scored` targets (not over B·T) so the result is the mean over the split.
 */
export function* evalBatches(tokens: TokenArray, opts: EvalBatchOptions): Generator<EvalBatch> {
  const { batchSize: B, blockSize: T } = opts;
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`batchSize must be a positive integer, got ${B}`);
  const pad = opts.padId ?? 0;
  const windows = spreadWindows(evalWindows(tokens.length, T, opts.lastWindow ?? 'pad'), opts.windows);
  for (let w0 = 0; w0 < windows.length; w0 += B) {
    const inputs = new Int32Array(B * T).fill(pad);
    const targets = new Int32Array(B * T).fill(IGNORE_INDEX);
    const rows = Math.min(B, windows.length - w0);
    let scored = 0;
    for (let r = 0; r < rows; r++) {
      const { start, length } = windows[w0 + r]!;
      for (let t = 0; t < length; t++) {
        inputs[r * T + t] = tokens[start + t]!;
        targets[r * T + t] = tokens[start + t + 1]!;
      }
      scored += length;
    }
    yield { inputs, targets, rows, scored };
  }
}
