// Sample text from a GPT-2: a model the training example saved (results/<run>/<optimizer>/model),
// Hugging Face's `gpt2` files, or any folder in that layout. Like nanoGPT's sample.py.
//
//   tsx examples/generate.ts --model DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T]
//                            [--top-k K] [--seed S] [--num-samples N]
import { loadGpt2Tokenizer, GPT2_EOT_ID } from '../src/data/tokenizer.ts';
import * as E from '../src/index.ts';
import { generate, loadGPT2 } from '../src/nn/index.ts';
import { helpText, parseFlags, UsageError, type FlagSpec } from '../src/train/cli.ts';

const SPEC = {
  model: { type: 'string', default: null, help: 'a folder with config.json and model.safetensors (Hugging Face GPT-2 layout)' },
  prompt: { type: 'string', default: '\n', help: 'the text to continue' },
  maxNewTokens: { type: 'int', default: 100, min: 0, help: 'tokens to generate per sample' },
  temperature: { type: 'number', default: 0.8, min: 0, help: 'sampling temperature (0 = greedy)' },
  topK: { type: 'int', default: 200, min: 0, help: 'sample from the k most likely tokens (0 = all)' },
  seed: { type: 'int', default: 1337, min: 0, help: 'random seed (sample i uses seed + i)' },
  numSamples: { type: 'int', default: 1, min: 1, help: 'samples to draw' },
  stopAtEot: { type: 'bool', default: true, help: 'end a sample at <|endoftext|>' },
} satisfies Record<string, FlagSpec>;
const USAGE = 'usage: tsx examples/generate.ts --model DIR [flags]';

let flags;
try {
  flags = parseFlags(SPEC, process.argv.slice(2));
  if (!flags.help && !flags.model) throw new UsageError('--model DIR is required');
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`error: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (flags.help) {
  console.log(helpText(USAGE, SPEC));
  process.exit(0);
}

await E.initOrExit();
const model = loadGPT2(flags.model!);
const tok = loadGpt2Tokenizer();
const prompt = tok.encode(flags.prompt!);
if (prompt.length === 0) {
  console.error('error: --prompt encodes to no tokens; give some text');
  process.exit(2);
}
for (let i = 0; i < flags.numSamples!; i++) {
  const ids = await generate(model, prompt, {
    maxNewTokens: flags.maxNewTokens!,
    temperature: flags.temperature!,
    topK: flags.topK!,
    seed: flags.seed! + i,
    stopToken: flags.stopAtEot ? GPT2_EOT_ID : undefined,
  });
  console.log(tok.decode([...prompt, ...ids]));
  if (i < flags.numSamples! - 1) console.log('---------------');
}
model.dispose();
