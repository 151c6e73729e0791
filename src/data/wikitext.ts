// Finding and reading a corpus. Where files come from, in order:
//   1. dataDir (--data-dir)   2. $WIKITEXT_DIR   3. the per-user cache (<cache>/wikitext)
//   4. a download of HF's parquet files into that cache (only with allowDownload)
//   5. for the default job only: the embedded State of the Union corpus, with a banner.
// An explicitly requested corpus that is not found is an error that lists where we looked.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { userCacheDir } from './cache.ts';
import {
  HF_BASE_URL,
  HF_PARQUET_FILES,
  SPLITS,
  WIKITEXT,
  hfSplitName,
  type DatasetName,
  type RemoteFile,
  type Split,
  type WikiTextInfo,
  type WikiTextName,
} from './datasets.ts';
import { checkRecordedSha256, downloadFile, sha256File } from './download.ts';
import { linesToText, readParquetTextColumn } from './parquet.ts';
import { sotuSplits } from './sotu.ts';

export class CorpusError extends Error {
  override name = 'CorpusError';
}

export type Origin = 'data-dir' | 'env' | 'cache' | 'download' | 'embedded';

export type SplitSource =
  /** A classic text file; sha256 is set when a SHA256SUMS file next to it lists it. */
  | { kind: 'text'; path: string; sha256: string | null }
  /** HF parquet shards, in order. */
  | { kind: 'parquet'; paths: string[] }
  | { kind: 'embedded' };

export interface Corpus {
  dataset: DatasetName;
  title: string;
  origin: Origin;
  /** Folder the splits were found in (null for the embedded corpus). */
  dir: string | null;
  splits: Partial<Record<Split, SplitSource>>;
  /** Set when the default job fell back to the embedded corpus: show it to the user. */
  banner: string | null;
}

export interface ResolveOptions {
  /**
   * Corpus to use. Omitted means "the default job": WikiText-2 when it is found, otherwise the
   * embedded SOTU corpus with a banner. Naming a corpus makes its absence an error.
   */
  dataset?: DatasetName;
  dataDir?: string;
  /** Environment to read WIKITEXT_DIR / XDG_CACHE_HOME from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Per-user cache root (default $XDG_CACHE_HOME/sophia-gpt or ~/.cache/sophia-gpt). */
  cacheDir?: string;
  /** Splits that must be present (default: train, valid, test). */
  splits?: readonly Split[];
  /** Download HF's parquet files into the cache when nothing is found (default false). */
  allowDownload?: boolean;
  /** Download files with neither a SHA-256 nor a size pinned (default false; see HF_PARQUET_FILES). */
  allowUnpinned?: boolean;
  /** Mirror or test server to download from instead of HF_BASE_URL. */
  downloadBaseUrl?: string;
  /** Replace the pinned file list (tests, mirrors with their own pins). */
  remoteFiles?: Record<Split, RemoteFile[]>;
  progress?: boolean;
  log?: (line: string) => void;
}

interface Place {
  origin: Exclude<Origin, 'download' | 'embedded'>;
  dir: string;
  label: string;
}

interface Found {
  dir: string;
  splits: Partial<Record<Split, SplitSource>>;
}

export async function resolveCorpus(opts: ResolveOptions = {}): Promise<Corpus> {
  const env = opts.env ?? process.env;
  const required = opts.splits ?? SPLITS;
  const isDefault = opts.dataset === undefined;
  const dataset = opts.dataset ?? 'wikitext-2';
  if (dataset === 'sotu') return embeddedCorpus(null);
  const info = WIKITEXT[dataset];
  if (!info) throw new CorpusError(`Unknown dataset '${String(dataset)}'. Known: ${[...Object.keys(WIKITEXT), 'sotu'].join(', ')}.`);

  const cacheRoot = opts.cacheDir ?? userCacheDir(env);
  const places: Place[] = [];
  if (opts.dataDir !== undefined) {
    const dir = resolve(opts.dataDir);
    if (!isDir(dir)) throw new CorpusError(`The data directory ${dir} (--data-dir) does not exist or is not a folder.`);
    places.push({ origin: 'data-dir', dir, label: `--data-dir ${dir}` });
  }
  if (env.WIKITEXT_DIR) places.push({ origin: 'env', dir: resolve(env.WIKITEXT_DIR), label: `WIKITEXT_DIR=${env.WIKITEXT_DIR}` });
  const cacheWikitext = join(cacheRoot, 'wikitext');
  places.push({ origin: 'cache', dir: cacheWikitext, label: `cache ${cacheWikitext}` });

  const looked: string[] = [];
  if (opts.dataDir === undefined) looked.push('--data-dir: not given');
  if (!env.WIKITEXT_DIR) looked.push('WIKITEXT_DIR: not set');
  for (const place of places) {
    const found = findInPlace(place.dir, info, required, looked, place.label);
    if (found) return { dataset, title: info.title, origin: place.origin, dir: found.dir, splits: found.splits, banner: null };
  }

  let downloadProblem: string | null = null;
  if (opts.allowDownload) {
    try {
      const remote = opts.remoteFiles ?? HF_PARQUET_FILES[dataset];
      const base = (opts.downloadBaseUrl ?? HF_BASE_URL).replace(/\/$/, '');
      for (const split of required) {
        for (const f of remote[split]) {
          await downloadFile({
            url: `${base}/${f.path}`,
            dest: join(cacheWikitext, ...f.path.split('/')),
            sha256: f.sha256,
            bytes: f.bytes,
            allowUnpinned: opts.allowUnpinned,
            progress: opts.progress,
            log: opts.log,
          });
        }
      }
      const found = findInPlace(cacheWikitext, info, required, [], 'download');
      if (found) return { dataset, title: info.title, origin: 'download', dir: found.dir, splits: found.splits, banner: null };
      downloadProblem = `the downloaded files in ${cacheWikitext} do not form the corpus (see above)`;
    } catch (e) {
      downloadProblem = (e as Error).message;
    }
  }

  const where = looked.map((l) => `  - ${l}`).join('\n');
  const howTo =
    `Put the files in a folder named ${info.folders[0]}/ (train.txt, valid.txt, test.txt or ` +
    `wiki.{train,valid,test}.${info.classicSuffix}) or ${info.hfConfig}/ (Hugging Face parquet files) inside DIR, ` +
    `then pass --data-dir DIR (dataDir) or set WIKITEXT_DIR=DIR; or let it be downloaded into ${cacheWikitext} ` +
    `with --download (allowDownload: true).`;
  const dl = downloadProblem ? `\nDownload failed: ${downloadProblem}` : opts.allowDownload ? '' : '\nDownloading was not enabled.';
  if (!isDefault) {
    throw new CorpusError(
      `${info.title} was requested but not found (needed splits: ${required.join(', ')}).\nLooked in:\n${where}${dl}\n${howTo}`,
    );
  }
  const banner =
    `NOTE: ${info.title} was not found, so this run uses the embedded State of the Union corpus ` +
    `(U.S. presidential addresses 1790-2021, public domain) instead; its loss and perplexity are ` +
    `not comparable with WikiText results.\nLooked in:\n${where}${dl}\n${howTo}`;
  return embeddedCorpus(banner);
}

function embeddedCorpus(banner: string | null): Corpus {
  return {
    dataset: 'sotu',
    title: 'State of the Union addresses (embedded)',
    origin: 'embedded',
    dir: null,
    splits: { train: { kind: 'embedded' }, valid: { kind: 'embedded' }, test: { kind: 'embedded' } },
    banner,
  };
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Look for the corpus under `root` (root/<folder> for each known folder name, or root itself if it is so named). */
function findInPlace(root: string, info: WikiTextInfo, required: readonly Split[], looked: string[], label: string): Found | null {
  if (!isDir(root)) {
    looked.push(`${label}: does not exist`);
    return null;
  }
  const candidates = info.folders.map((f) => join(root, f));
  if (info.folders.includes(basename(root))) candidates.unshift(root);
  let any = false;
  for (const dir of candidates) {
    if (!isDir(dir)) continue;
    any = true;
    const problems: string[] = [];
    const splits: Partial<Record<Split, SplitSource>> = {};
    for (const split of SPLITS) {
      const src = findSplit(dir, info, split, problems);
      if (src) splits[split] = src;
    }
    const missing = required.filter((s) => !splits[s]);
    if (missing.length === 0) return { dir, splits };
    const have = SPLITS.filter((s) => splits[s]);
    looked.push(
      `${label}: ${dir} has ${have.length ? have.join(', ') : 'no splits'} but not ${missing.join(', ')}` +
        (problems.length ? ` (${problems.join('; ')})` : ''),
    );
  }
  if (!any) looked.push(`${label}: no ${info.folders.map((f) => `${f}/`).join(' or ')} folder`);
  return null;
}

function findSplit(dir: string, info: WikiTextInfo, split: Split, problems: string[]): SplitSource | null {
  for (const name of [`wiki.${split}.${info.classicSuffix}`, `${split}.txt`]) {
    const path = join(dir, name);
    if (existsSync(path)) return { kind: 'text', path, sha256: listedChecksum(path) };
  }
  const re = new RegExp(`^${hfSplitName(split)}-(\\d+)-of-(\\d+)\\.parquet$`);
  const shards = readdirSync(dir)
    .map((f) => ({ f, m: re.exec(f) }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]));
  if (shards.length === 0) return null;
  const total = Number(shards[0]!.m![2]);
  const ok = shards.length === total && shards.every((s, i) => Number(s.m![1]) === i && Number(s.m![2]) === total);
  if (!ok) {
    problems.push(`${split}: ${shards.length} of ${total} parquet shards present (${shards.map((s) => s.f).join(', ')})`);
    return null;
  }
  return { kind: 'parquet', paths: shards.map((s) => join(dir, s.f)) };
}

/** SHA-256 for `path` from a SHA256SUMS file in its folder or the folder above, if one lists it. */
function listedChecksum(path: string): string | null {
  for (const sumsDir of [dirname(path), dirname(dirname(path))]) {
    const sums = readChecksums(join(sumsDir, 'SHA256SUMS'));
    const h = sums?.get(resolve(path));
    if (h) return h;
  }
  return null;
}

/** Parse a `sha256sum` output file into absolute path → hash (null if absent). */
export function readChecksums(sumsPath: string): Map<string, string> | null {
  if (!existsSync(sumsPath)) return null;
  const map = new Map<string, string>();
  for (const line of readFileSync(sumsPath, 'utf8').split('\n')) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m) map.set(resolve(dirname(sumsPath), m[2]!), m[1]!.toLowerCase());
  }
  return map;
}

export interface ChecksumReport {
  ok: string[];
  bad: { path: string; expected: string; actual: string }[];
  missing: string[];
}

/** Verify every file listed in a SHA256SUMS file. */
export async function verifyChecksums(sumsPath: string): Promise<ChecksumReport> {
  const sums = readChecksums(sumsPath);
  if (!sums) throw new CorpusError(`No checksum file at ${sumsPath}.`);
  const report: ChecksumReport = { ok: [], bad: [], missing: [] };
  for (const [path, expected] of sums) {
    if (!existsSync(path)) {
      report.missing.push(path);
      continue;
    }
    const actual = createHash('sha256').update(await readFile(path)).digest('hex');
    if (actual === expected) report.ok.push(path);
    else report.bad.push({ path, expected, actual });
  }
  return report;
}

export interface ReadOptions {
  /**
   * Check the text against what the corpus must look like: SHA256SUMS when present, valid UTF-8,
   * non-empty, ends with a newline, and the known line count. Default true; turn off only for a
   * deliberately modified copy.
   */
  verify?: boolean;
}

/**
 * A parquet shard's bytes: against the SHA-256 recorded when it was downloaded, or, for a copy
 * placed by hand (--data-dir, WIKITEXT_DIR, an older cache) that is HF's file of the pinned size,
 * against its pin in HF_PARQUET_FILES. A shard of another size is another revision of HF's
 * conversion (or the user's own file): its rows are still checked by the line count.
 */
async function checkParquetFile(path: string, dataset: DatasetName, split: Split): Promise<void> {
  if (await checkRecordedSha256(path)) return;
  const files = dataset === 'sotu' ? [] : HF_PARQUET_FILES[dataset][split];
  const pin = files.find((f) => path.endsWith(`/${f.path}`) || basename(path) === basename(f.path));
  if (!pin?.sha256 || statSync(path).size !== pin.bytes) return;
  const have = await sha256File(path);
  if (have !== pin.sha256) {
    throw new CorpusError(
      `${path} has the size of Hugging Face's ${pin.path} (${pin.bytes} bytes) but SHA-256 ${have}, not its pinned ` +
        `${pin.sha256}: the file is corrupt. Restore it from the original download (or delete it and let the job download it again).`,
    );
  }
}

/** The text of one split, exactly as the classic file has it (parquet rows are re-joined). */
export async function readSplitText(corpus: Corpus, split: Split, opts: ReadOptions = {}): Promise<string> {
  const verify = opts.verify ?? true;
  const src = corpus.splits[split];
  if (!src) {
    const have = SPLITS.filter((s) => corpus.splits[s]);
    throw new CorpusError(
      `${corpus.title} in ${corpus.dir} has no ${split} split (it has: ${have.join(', ') || 'none'}). ` +
        `Add the ${split} file there, or point --data-dir / WIKITEXT_DIR at a complete copy.`,
    );
  }
  if (src.kind === 'embedded') return sotuSplits()[split];

  let text: string;
  let what: string;
  if (src.kind === 'text') {
    what = src.path;
    const bytes = await readFile(src.path);
    if (verify && src.sha256) {
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== src.sha256) {
        throw new CorpusError(
          `${src.path} does not match its SHA256SUMS entry (expected ${src.sha256}, got ${actual}): ` +
            `the file is corrupt, truncated or edited. Restore it from the original download.`,
        );
      }
    }
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      throw new CorpusError(`${src.path} is not valid UTF-8: the file is corrupt or truncated. Restore it from the original download.`);
    }
  } else {
    what = src.paths.join(' + ');
    const rows: string[] = [];
    for (const p of src.paths) {
      if (verify) await checkParquetFile(p, corpus.dataset, split);
      for (const r of await readParquetTextColumn(p)) rows.push(r);
    }
    text = linesToText(rows);
  }

  if (text.trim().length === 0) {
    throw new CorpusError(`The ${split} split of ${corpus.title} (${what}) is empty. Restore the file from the original download.`);
  }
  if (verify) {
    if (!text.endsWith('\n')) {
      throw new CorpusError(
        `${what} does not end with a newline, so it is probably truncated. Restore it from the original download ` +
          `(or pass verify: false if you edited it on purpose).`,
      );
    }
    const expected = (WIKITEXT as Record<string, WikiTextInfo | undefined>)[corpus.dataset]?.lines[split];
    const lines = countLines(text);
    if (expected !== undefined && lines !== expected) {
      throw new CorpusError(
        `${what} has ${lines} lines but ${corpus.title} ${split} has ${expected}: the file is truncated or is ` +
          `not this split. Restore it from the original download (or pass verify: false for a modified copy).`,
      );
    }
  }
  return text;
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** WikiText name check for CLI input. */
export function parseDatasetName(s: string): DatasetName {
  if (s === 'sotu' || Object.hasOwn(WIKITEXT, s)) return s as DatasetName;
  throw new CorpusError(`Unknown dataset '${s}'. Known: ${[...Object.keys(WIKITEXT), 'sotu'].join(', ')}.`);
}

export type { WikiTextName };
