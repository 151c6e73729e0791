// Find a corpus, tokenize its splits with GPT-2 BPE (cached), and show one training batch.
//
//   npx tsx examples/tokenize.ts                          # default job: WikiText-2, else embedded SOTU
//   npx tsx examples/tokenize.ts --data-dir ../shared/data --split train
//   npx tsx examples/tokenize.ts --dataset wikitext-103 --download
//
// Options: --dataset NAME, --data-dir DIR, --split train|valid|test|all, --cache-dir DIR,
// --download, --allow-unpinned, --detokenize, --rebuild-cache, --no-verify, --progress.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BatchLoader,
  SPLITS,
  loadGpt2Tokenizer,
  parseDatasetName,
  resolveCorpus,
  tokenizeSplit,
  userCacheDir,
  type Split,
} from '../src/data/index.ts';

const { values } = parseArgs({
  options: {
    dataset: { type: 'string' },
    'data-dir': { type: 'string' },
    split: { type: 'string', default: 'all' },
    'cache-dir': { type: 'string' },
    download: { type: 'boolean', default: false },
    'allow-unpinned': { type: 'boolean', default: false },
    detokenize: { type: 'boolean', default: false },
    'rebuild-cache': { type: 'boolean', default: false },
    'no-verify': { type: 'boolean', default: false },
    progress: { type: 'boolean' },
  },
});

const splits: readonly Split[] = values.split === 'all' ? SPLITS : [values.split as Split];
if (!splits.every((s) => SPLITS.includes(s))) throw new Error(`--split must be train, valid, test or all (got ${values.split})`);
const cacheRoot = values['cache-dir'] ?? userCacheDir();

// Data errors carry a message that says what is wrong and what to do: print it, not a stack.
process.on('uncaughtException', (e) => {
  process.stderr.write(`\nerror: ${e.message}\n`);
  process.exit(1);
});

const corpus = await resolveCorpus({
  dataset: values.dataset === undefined ? undefined : parseDatasetName(values.dataset),
  dataDir: values['data-dir'],
  cacheDir: cacheRoot,
  splits,
  allowDownload: values.download,
  allowUnpinned: values['allow-unpinned'],
  progress: values.progress,
});
if (corpus.banner) process.stderr.write(`\n${corpus.banner}\n\n`);
console.log(`corpus: ${corpus.title} (${corpus.origin}${corpus.dir ? `: ${corpus.dir}` : ''})`);

let train: Uint16Array | undefined;
for (const split of splits) {
  const r = await tokenizeSplit(corpus, split, {
    cacheDir: join(cacheRoot, 'tokens'),
    detokenize: values.detokenize,
    rebuildCache: values['rebuild-cache'],
    verify: !values['no-verify'],
    progress: values.progress,
  });
  console.log(
    `${split.padEnd(5)} ${r.tokens.length.toLocaleString('en-US').padStart(11)} tokens  ` +
      `${r.fromCache ? 'cache load' : 'tokenized '} ${r.seconds.toFixed(2).padStart(6)} s  ${r.cachePath ?? '(no cache)'}`,
  );
  if (split === 'train') train = r.tokens;
}

if (train) {
  const loader = new BatchLoader(train, { batchSize: 4, blockSize: 32, seed: 0 });
  const b = loader.next();
  const tok = loadGpt2Tokenizer();
  console.log(`\nbatchesPerEpoch(B=4,T=32) = ${loader.batchesPerEpoch}; first row of the first batch:`);
  console.log(JSON.stringify(tok.decode(b.inputs.subarray(0, 32))));
}
