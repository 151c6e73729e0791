// The main job: GPT-2 trained on WikiText with Sophia, AdamW and SGD, compared in one report.
//
//   tsx examples/gpt2-wikitext.ts                       # the default comparison (~5 min on 2 CPU cores)
//   tsx examples/gpt2-wikitext.ts --optimizer sophia --epochs 5
//   tsx examples/gpt2-wikitext.ts --help
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProgress, loadGpt2Tokenizer, resolveCorpus, tokenizeSplit, type DatasetName } from '../src/data/index.ts';
import * as E from '../src/index.ts';
import { writeFileAtomic } from '../src/nn/safetensors.ts';
import { hasCheckpoint } from '../src/train/checkpoint.ts';
import { helpText, kebab, parseFlags, UsageError, type FlagSpec } from '../src/train/cli.ts';
import { writeReport } from '../src/train/report.ts';
import { checkModelChoice, DEFAULT_LR, DEFAULT_WEIGHT_DECAY, DivergedError, trainRun, type OptimizerName, type TrainConfig } from '../src/train/trainer.ts';

const OPTIMIZERS = ['sophia', 'sophia-h', 'adam', 'adamw', 'sgd'] as const;
const SPEC = {
  optimizer: { type: 'string', default: 'all', choices: [...OPTIMIZERS, 'all'], help: "optimizer to train with; 'all' runs sophia, adamw and sgd" },
  epochs: { type: 'number', default: 1, min: 0, exclusive: true, help: 'passes over the training split (ignored with --max-steps)' },
  maxSteps: { type: 'int', default: 30, min: 1, help: 'optimizer steps per run (given --epochs alone, the epochs decide)' },
  model: { type: 'string', default: 'tiny', help: 'tiny | small | gpt2 | DIR (a Hugging Face GPT-2 directory to start from)' },
  nLayer: { type: 'int', default: null, min: 1, help: 'override the preset: number of layers' },
  nHead: { type: 'int', default: null, min: 1, help: 'override the preset: attention heads' },
  nEmbd: { type: 'int', default: null, min: 1, help: 'override the preset: width' },
  dropout: { type: 'number', default: 0, min: 0, help: "dropout while training (nanoGPT's: attention probabilities, residual branches, embeddings); must be < 1" },
  dataset: { type: 'string', default: null, choices: ['wikitext-2', 'wikitext-2-raw', 'wikitext-103', 'wikitext-103-raw', 'sotu'], help: 'corpus (default: WikiText-2, or the embedded corpus when WikiText is not found)' },
  dataDir: { type: 'string', default: null, help: 'folder holding the corpus (else $WIKITEXT_DIR, then this checkout\'s ../shared/data, then the user cache and a download)' },
  detokenize: { type: 'bool', default: false, help: "undo WikiText's ' @-@ ', ' @,@ ', ' @.@ ' escapes and tokenizer spacing before GPT-2 tokenization (docs/data.md)" },
  rebuildCache: { type: 'bool', default: false, help: 'tokenize the splits again, overwriting their token caches' },
  download: { type: 'bool', default: true, help: 'download WikiText from the Hugging Face Hub into the user cache when it is not found (--download=false: never touch the network)' },
  batchSize: { type: 'int', default: 8, min: 1, help: 'sequences per micro-batch' },
  gradAccum: { type: 'int', default: 1, min: 1, help: 'micro-batches per optimizer step' },
  context: { type: 'int', default: 64, min: 2, help: 'tokens per sequence' },
  lr: { type: 'number', default: null, min: 0, help: 'peak learning rate (default per optimizer: sophia 4e-3, sophia-h 2e-3, adam/adamw 3e-3, sgd 0.3)' },
  minLr: { type: 'number', default: null, min: 0, help: 'final learning rate of the cosine schedule (default lr/10)' },
  warmup: { type: 'int', default: 3, min: 0, help: 'linear warm-up steps' },
  schedule: { type: 'string', default: 'cosine', choices: ['cosine', 'cosine-restarts', 'constant'], help: 'learning-rate schedule after warm-up' },
  t0: { type: 'int', default: 50, min: 1, help: 'cosine-restarts: steps of the first period' },
  tMult: { type: 'int', default: 1, min: 1, help: 'cosine-restarts: period growth factor' },
  weightDecay: { type: 'number', default: null, min: 0, help: "weight decay, not applied to biases and LayerNorm (default per optimizer: adamw and sophia 0.1, decoupled; adam and sgd 0, as in torch.optim, where it would be an L2 term in the gradient)" },
  gradClip: { type: 'number', default: 1, min: 0, help: 'global gradient-norm clipping (0 = off)' },
  precision: { type: 'string', default: 'f32', choices: ['f32', 'f16'], help: 'f16: mixed precision (f16 matmuls/activations, f32 master weights and optimizer state, dynamic loss scaling; needs shader-f16, else runs f32 and says so)' },
  lossScale: { type: 'number', default: 65536, min: 0, exclusive: true, help: 'f16: initial loss scale (halved on overflow)' },
  lossScaleWindow: { type: 'int', default: 2000, min: 1, help: 'f16: consecutive good steps before the loss scale doubles' },
  hessEvery: { type: 'int', default: 10, min: 1, help: 'Sophia: refresh the Hessian estimate every k steps' },
  hessBatchSize: { type: 'int', default: null, min: 1, help: 'Sophia: sequences in the separate estimator minibatch (default: --batch-size); fewer make each refresh cheaper and noisier' },
  hessBatch: { type: 'string', default: 'separate', choices: ['separate', 'shared'], help: "Sophia: estimate the Hessian on a separate minibatch (the authors' code), or on the refresh step's own, reusing its forward and backward (f32)" },
  rho: { type: 'number', default: 0.04, min: 0, exclusive: true, help: 'Sophia (GNB, official form): ρ; the step clips |m|/(ρ·B·h)' },
  gamma: { type: 'number', default: 0.01, min: 0, exclusive: true, help: 'Sophia-H (Hutchinson, paper form): γ; the step clips m/max(γ·h, ε)' },
  sophiaForm: { type: 'string', default: null, choices: ['official', 'paper'], help: "Sophia's parameterisation: official (|m|/(ρ·B·h), uses --rho) or paper (m/max(γ·h, ε), uses --gamma); default official for sophia, paper for sophia-h" },
  probe: { type: 'string', default: 'rademacher', choices: ['rademacher', 'gaussian'], help: "Sophia-H: Hutchinson's probe vectors u (ĥ = u⊙Hu)" },
  clipThreshold: { type: 'number', default: 1, min: 0, exclusive: true, help: "Sophia: each coordinate's step is clipped to ±c·lr" },
  biasCorrectH: { type: 'bool', default: false, help: 'Sophia: divide h by 1 − β2^refreshes, so early steps are not all clipped' },
  signMomentum: { type: 'bool', default: false, help: 'Sophia: never estimate h (h = 0), the sign-momentum limit, for comparison' },
  evalEvery: { type: 'int', default: 10, min: 1, help: 'evaluate every N steps (and at the end)' },
  evalTokens: { type: 'int', default: 2048, min: 0, help: 'validation tokens per evaluation: fixed --context windows spread evenly over the split, so runs compare; 0 = the whole split (WikiText-2: 259k tokens, minutes per evaluation on a CPU adapter)' },
  testEval: { type: 'bool', default: false, help: 'after training, score the test split once (with --eval-tokens) and add it to the results table' },
  logEvery: { type: 'int', default: 5, min: 1, help: 'read losses back every N steps' },
  maxBadSteps: { type: 'int', default: 10, min: 1, help: 'stop a run after this many consecutive steps with a non-finite loss or (f32) gradient (their updates are skipped), leaving a checkpoint of the last finite step' },
  checkpointEvery: { type: 'int', default: 50, min: 0, help: 'write a checkpoint every N steps (0 = only at the end and on Ctrl-C)' },
  seed: { type: 'int', default: 1337, min: 0, help: 'random seed (initialisation, batches, estimators)' },
  out: { type: 'string', default: null, help: 'results folder (default results/<timestamp>-<optimizer>)' },
  resume: { type: 'string', default: null, help: 'continue the runs in this results folder from their last checkpoints' },
  sampleTokens: { type: 'int', default: 40, min: 0, help: 'tokens of text to generate after training (examples/generate.ts samples a saved model later)' },
  prompt: { type: 'string', default: 'The', help: 'the text the sample continues' },
  temperature: { type: 'number', default: 0.8, min: 0, help: 'sampling temperature (0 = greedy)' },
  topK: { type: 'int', default: 40, min: 0, help: 'sample from the k most likely tokens (0 = all)' },
} satisfies Record<string, FlagSpec>;

const USAGE = 'usage: tsx examples/gpt2-wikitext.ts [flags]';

/** What produced a run, for its config.json: this package, Node, and the WebGPU bindings (Dawn). */
function versions(): Record<string, string> {
  const pkg = (p: string) => (JSON.parse(readFileSync(join(root, p), 'utf8')) as { version: string }).version;
  const out: Record<string, string> = { engine: pkg('package.json'), node: process.version };
  try {
    out.webgpu = pkg('node_modules/webgpu/package.json');
  } catch {
    out.webgpu = 'unknown';
  }
  return out;
}
const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * What a results folder was started to do, written before the first run (plan.json): every run's
 * settings and the data choices. --resume follows it, so runs that had not started, or had not
 * reached a checkpoint, when the job stopped still happen, on the same data.
 */
interface Plan {
  runs: OptimizerName[];
  configs: Record<string, TrainConfig>;
  data: { dataset: string; dataDir: string | null; detokenize: boolean; testEval: boolean };
}

function readPlan(dir: string): Plan {
  const file = join(dir, 'plan.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Plan;
  // Folders from before plan.json: the runs that wrote a config.json.
  const runs = OPTIMIZERS.filter((n) => existsSync(join(dir, n, 'config.json')));
  if (runs.length === 0) throw new Error(`--resume ${dir}: no runs found there (expected plan.json or <optimizer>/config.json, written by this script)`);
  const configs = Object.fromEntries(runs.map((n) => [n, JSON.parse(readFileSync(join(dir, n, 'config.json'), 'utf8')) as TrainConfig & Record<string, unknown>]));
  const any = (k: string) => runs.some((n) => (configs[n] as unknown as Record<string, unknown>)[k] === true);
  const first = configs[runs[0]] as unknown as Record<string, unknown>;
  return { runs, configs, data: { dataset: String(first.dataset ?? 'wikitext-2'), dataDir: null, detokenize: any('detokenize'), testEval: any('testEval') } };
}

async function main(): Promise<void> {
  let flags;
  try {
    flags = parseFlags(SPEC, process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    throw e;
  }
  if (flags.help) {
    console.log(helpText(USAGE, SPEC));
    return;
  }
  // --model and --context are checked before the adapter and the data (tokenizing can take a while).
  if (flags.resume === null) checkModelChoice(flags.model!, flags.context!);
  const ctx = await E.init();
  console.log(`adapter: ${E.describeAdapter(ctx)}`);

  // A resumed folder keeps everything it was started with: the runs, their settings and the data
  // (corpus, folder, --detokenize, --test-eval), whatever this command line says; only
  // --data-dir may point somewhere else (the same files, moved).
  const plan = flags.resume !== null ? readPlan(flags.resume) : null;
  if (plan) {
    const ignored = [...flags.given].filter((k) => !['resume', 'dataDir', 'download', 'help'].includes(k));
    if (ignored.length) console.log(`note: --resume continues with the settings the runs were started with; ignoring ${ignored.map((k) => `--${kebab(k)}`).join(', ')}`);
  }
  const wantTest = plan ? plan.data.testEval : flags.testEval;
  const detokenize = plan ? plan.data.detokenize : flags.detokenize;

  // The data: WikiText-2 by default; this checkout's development copy sits in ../shared/data.
  const shared = resolve(root, '../shared/data');
  const dataDir = flags.dataDir ?? plan?.data.dataDir ?? (!process.env.WIKITEXT_DIR && existsSync(shared) ? shared : undefined);
  const dataset = (plan ? plan.data.dataset : (flags.dataset ?? undefined)) as DatasetName | undefined;
  const corpus = await resolveCorpus({ dataset, dataDir, splits: wantTest ? ['train', 'valid', 'test'] : ['train', 'valid'], allowDownload: flags.download });
  if (corpus.banner) console.log(corpus.banner);
  const tokOpts = { detokenize, rebuildCache: flags.rebuildCache };
  const [train, valid] = [await tokenizeSplit(corpus, 'train', tokOpts), await tokenizeSplit(corpus, 'valid', tokOpts)];
  console.log(`data: ${corpus.title}: ${train.tokens.length.toLocaleString('en-US')} train / ${valid.tokens.length.toLocaleString('en-US')} valid tokens (${train.fromCache ? 'cached' : 'tokenized'})`);
  const tok = loadGpt2Tokenizer();
  const test = wantTest ? (await tokenizeSplit(corpus, 'test', tokOpts)).tokens : undefined;
  const data = { train: train.tokens, valid: valid.tokens, test, decode: (ids: number[]) => tok.decode(ids), encode: (s: string) => tok.encode(s) };

  const resumeDir = flags.resume;
  // results/<timestamp>-<optimizer>/ (or -all), one <optimizer>/ folder per run inside.
  const outRoot = resumeDir ?? flags.out ?? join('results', `${new Date().toISOString().replace(/[:.]/g, '-')}-${flags.optimizer}`);
  mkdirSync(outRoot, { recursive: true });
  // A resumed folder continues the runs of its plan; otherwise --optimizer decides.
  const names: OptimizerName[] = plan ? plan.runs : flags.optimizer === 'all' ? ['sophia', 'adamw', 'sgd'] : [flags.optimizer as OptimizerName];

  let stop = false;
  process.on('SIGINT', () => {
    if (stop) process.exit(130);
    stop = true;
    console.error('\nCtrl-C: finishing the current step and writing a checkpoint (press again to quit at once)');
  });

  const configFor = (name: OptimizerName, out: string): TrainConfig => {
    const lr = flags.lr ?? DEFAULT_LR[name];
    return {
      optimizer: name,
      model: flags.model,
      nLayer: flags.nLayer,
      nHead: flags.nHead,
      nEmbd: flags.nEmbd,
      dropout: flags.dropout!,
      batchSize: flags.batchSize,
      gradAccum: flags.gradAccum,
      context: flags.context,
      epochs: flags.epochs!,
      maxSteps: flags.given.has('epochs') && !flags.given.has('maxSteps') ? null : flags.maxSteps,
      lr,
      minLr: flags.minLr ?? lr / 10,
      warmup: flags.warmup!,
      schedule: flags.schedule as TrainConfig['schedule'],
      t0: flags.t0!,
      tMult: flags.tMult!,
      weightDecay: flags.weightDecay ?? DEFAULT_WEIGHT_DECAY[name],
      gradClip: flags.gradClip!,
      hessEvery: flags.hessEvery!,
      hessBatch: flags.hessBatch as TrainConfig['hessBatch'],
      hessBatchSize: flags.hessBatchSize ?? null,
      rho: flags.rho!,
      gamma: flags.gamma!,
      sophiaForm: (flags.sophiaForm ?? (name === 'sophia-h' ? 'paper' : 'official')) as TrainConfig['sophiaForm'],
      probe: flags.probe as TrainConfig['probe'],
      clipThreshold: flags.clipThreshold!,
      biasCorrectH: flags.biasCorrectH,
      signMomentum: flags.signMomentum,
      betas: name === 'sophia' || name === 'sophia-h' ? [0.965, 0.99] : [0.9, 0.95],
      momentum: 0.9,
      evalEvery: flags.evalEvery!,
      evalTokens: flags.evalTokens!,
      testEval: flags.testEval,
      logEvery: flags.logEvery!,
      checkpointEvery: flags.checkpointEvery!,
      seed: flags.seed!,
      out,
      sampleTokens: flags.sampleTokens!,
      samplePrompt: flags.prompt!,
      temperature: flags.temperature!,
      topK: flags.topK!,
      maxBadSteps: flags.maxBadSteps!,
      precision: flags.precision as TrainConfig['precision'],
      lossScale: flags.lossScale!,
      lossScaleWindow: flags.lossScaleWindow!,
    } as TrainConfig;
  };
  if (!plan) {
    const configs = Object.fromEntries(names.map((n) => [n, configFor(n, join(outRoot, n))]));
    const planned: Plan = { runs: names, configs, data: { dataset: corpus.dataset, dataDir: dataDir ?? null, detokenize, testEval: wantTest } };
    writeFileAtomic(join(outRoot, 'plan.json'), JSON.stringify(planned, null, 2) + '\n');
  }

  const runDirs: string[] = [];
  const diverged: string[] = [];
  for (const name of names) {
    const out = join(outRoot, name);
    if (plan && existsSync(join(out, 'summary.json'))) {
      console.log(`${name}: already finished in ${out}`);
      runDirs.push(out);
      continue;
    }
    // Resumed from its checkpoint, or started afresh when it never reached one.
    const resuming = plan !== null && hasCheckpoint(join(out, 'checkpoints'));
    if (plan && !resuming) console.log(`${name}: no checkpoint in ${out}; starting it afresh`);
    const cfg: TrainConfig = plan ? { ...plan.configs[name], out } : configFor(name, out);
    const meta = { detokenize, dataset: corpus.dataset, corpusOrigin: corpus.origin, adapter: E.describeAdapter(ctx), versions: versions() };
    console.log(`\n== ${name}: lr ${cfg.lr}, ${cfg.maxSteps ?? `${cfg.epochs} epoch(s) of`} steps, batch ${cfg.batchSize}×${cfg.context}${cfg.gradAccum > 1 ? `×${cfg.gradAccum}` : ''}, model ${cfg.model}${cfg.precision === 'f16' ? ', precision f16' : ''} ==`);
    const bar = createProgress({ label: name, total: 1, enabled: process.stderr.isTTY });
    const hooks = {
      progress: (done: number, total: number, note: string) => {
        if (process.stderr.isTTY) bar.update(done / total, note);
        else if (done % (cfg.logEvery * 4) === 0 || done === total) console.log(`[${name}] step ${done}/${total}  ${note}`);
      },
      log: (l: string) => (process.stderr.isTTY ? (process.stderr.write('\r\x1b[K'), console.log(l)) : console.log(l)),
      shouldStop: () => stop,
    };
    let summary;
    try {
      summary = await trainRun(cfg, data, meta, hooks, resuming);
    } catch (e) {
      if (!(e instanceof DivergedError)) throw e;
      // One optimizer diverging is a result too: the other runs and the report still happen.
      bar.finish();
      console.error(`${name}: ${e.message}`);
      diverged.push(name);
      runDirs.push(out);
      continue;
    }
    bar.finish();
    runDirs.push(out);
    if (stop) {
      console.log(`interrupted; resume with: tsx examples/gpt2-wikitext.ts --resume ${outRoot}`);
      process.exit(130);
    }
    console.log(`${name}: ${summary.tokensPerS?.toFixed(0)} tokens/s, final val loss ${summary.valLoss?.toFixed(4)}`);
  }

  const report = await writeReport(outRoot, runDirs);
  console.log(`\n${report.table.text}`);
  for (const dir of runDirs) {
    const sample = join(dir, 'sample.txt');
    if (existsSync(sample)) console.log(`sample (${dir.split('/').pop()}): ${readFileSync(sample, 'utf8').trim().slice(0, 300)}\n`);
  }
  console.log(`report: ${join(outRoot, 'report.html')}`);
  ctx.device.destroy();
  if (diverged.length) {
    console.error(`diverged: ${diverged.join(', ')} (see above); the report shows their curves up to the stop`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`error: ${(e as Error).message}`);
  if (process.env.DEBUG) console.error(e);
  process.exit(1);
});
