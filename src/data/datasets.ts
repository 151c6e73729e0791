// What each corpus is called on disk and on the Hub, and facts used to check the files.

export type WikiTextName = 'wikitext-2' | 'wikitext-2-raw' | 'wikitext-103' | 'wikitext-103-raw';
export type DatasetName = WikiTextName | 'sotu';
export type Split = 'train' | 'valid' | 'test';
export const SPLITS: readonly Split[] = ['train', 'valid', 'test'];

export interface WikiTextInfo {
  name: WikiTextName;
  title: string;
  /** Folder names recognised under a data directory (classic zip name first, then HF's config name). */
  folders: string[];
  /** Classic file suffix: wiki.train.tokens (v1, with <unk>) or wiki.train.raw. */
  classicSuffix: 'tokens' | 'raw';
  /** Hugging Face config of Salesforce/wikitext. */
  hfConfig: string;
  /** Lines per split (= rows in HF's parquet files); a file with another count is refused. */
  lines: Record<Split, number>;
}

// WikiText-2 and -103 share their valid/test articles, hence the same line counts.
const W2_LINES = { train: 36_718, valid: 3_760, test: 4_358 };
const W103_LINES = { train: 1_801_350, valid: 3_760, test: 4_358 };

export const WIKITEXT: Record<WikiTextName, WikiTextInfo> = {
  'wikitext-2': {
    name: 'wikitext-2',
    title: 'WikiText-2 (v1, tokenized, with <unk>)',
    folders: ['wikitext-2', 'wikitext-2-v1'],
    classicSuffix: 'tokens',
    hfConfig: 'wikitext-2-v1',
    lines: W2_LINES,
  },
  'wikitext-2-raw': {
    name: 'wikitext-2-raw',
    title: 'WikiText-2 raw',
    folders: ['wikitext-2-raw', 'wikitext-2-raw-v1'],
    classicSuffix: 'raw',
    hfConfig: 'wikitext-2-raw-v1',
    lines: W2_LINES,
  },
  'wikitext-103': {
    name: 'wikitext-103',
    title: 'WikiText-103 (v1, tokenized, with <unk>)',
    folders: ['wikitext-103', 'wikitext-103-v1'],
    classicSuffix: 'tokens',
    hfConfig: 'wikitext-103-v1',
    lines: W103_LINES,
  },
  'wikitext-103-raw': {
    name: 'wikitext-103-raw',
    title: 'WikiText-103 raw',
    folders: ['wikitext-103-raw', 'wikitext-103-raw-v1'],
    classicSuffix: 'raw',
    hfConfig: 'wikitext-103-raw-v1',
    lines: W103_LINES,
  },
};

export function isWikiTextName(s: string): s is WikiTextName {
  return Object.hasOwn(WIKITEXT, s);
}

/** HF names the validation split "validation". */
export function hfSplitName(split: Split): string {
  return split === 'valid' ? 'validation' : split;
}

/**
 * The Hub commit the file list, sizes and row counts below were taken from. Downloading from a
 * commit rather than `main` makes the content immutable: the same URL always serves the same bytes.
 */
export const HF_REVISION = 'b08601e04326c79dfdd32d625aee71d232d685c3';
export const HF_BASE_URL = `https://huggingface.co/datasets/Salesforce/wikitext/resolve/${HF_REVISION}`;

export interface RemoteFile {
  /** Path relative to HF_BASE_URL and to the local cache folder, e.g. "wikitext-2-v1/train-00000-of-00001.parquet". */
  path: string;
  /**
   * Pinned SHA-256 (hex) of the file. `null` means this version of the program does not know
   * the hash (it was written without network access, and hashes are never guessed). Such a file
   * is still downloaded when its size is pinned: the hash of the first download is recorded
   * beside it and checked on every later use (see downloadFile).
   */
  sha256: string | null;
  /** Pinned size in bytes; null = unknown. With neither pin a download needs allowUnpinned. */
  bytes?: number | null;
}

// Sizes are the `num_bytes` that Hugging Face `datasets` records for these files at HF_REVISION
// (its download_checksums; the Hub's own checksum field there is empty). The raw files' SHA-256
// pins are their Git-LFS object ids at HF_REVISION, as recorded (with the same sizes) by several
// independent public projects that verified their downloads; the raw configs' validation and test
// files are byte-identical in wikitext-2-raw and wikitext-103-raw. No such record of the
// tokenized (v1) files was found, so their pins stay null: see RemoteFile.sha256.
export const HF_PARQUET_FILES: Record<WikiTextName, Record<Split, RemoteFile[]>> = {
  'wikitext-2': {
    train: [
      { path: 'wikitext-2-v1/train-00000-of-00001.parquet', sha256: null, bytes: 6068114 },
    ],
    valid: [{ path: 'wikitext-2-v1/validation-00000-of-00001.parquet', sha256: null, bytes: 617738 }],
    test: [{ path: 'wikitext-2-v1/test-00000-of-00001.parquet', sha256: null, bytes: 685430 }],
  },
  'wikitext-2-raw': {
    train: [
      { path: 'wikitext-2-raw-v1/train-00000-of-00001.parquet', sha256: 'e83889baabc497075506f91975be5fac0d45c5290b6b20582c8cd1e853d0c9f7', bytes: 6357543 },
    ],
    valid: [{ path: 'wikitext-2-raw-v1/validation-00000-of-00001.parquet', sha256: '204929b7ff9d6184953f867dedb860e40aa69c078fc1e54b3baaa8fb28511c4c', bytes: 657209 }],
    test: [{ path: 'wikitext-2-raw-v1/test-00000-of-00001.parquet', sha256: '5f1bea067869d04849c0f975a2b29c4ff47d867f484f5010ea5e861eab246d91', bytes: 732610 }],
  },
  'wikitext-103': {
    train: [
      { path: 'wikitext-103-v1/train-00000-of-00002.parquet', sha256: null, bytes: 155788327 },
      { path: 'wikitext-103-v1/train-00001-of-00002.parquet', sha256: null, bytes: 155928670 },
    ],
    valid: [{ path: 'wikitext-103-v1/validation-00000-of-00001.parquet', sha256: null, bytes: 655106 }],
    test: [{ path: 'wikitext-103-v1/test-00000-of-00001.parquet', sha256: null, bytes: 721735 }],
  },
  'wikitext-103-raw': {
    train: [
      { path: 'wikitext-103-raw-v1/train-00000-of-00002.parquet', sha256: '74da360f23826045b3e6ac6375411fdb15f003030aa74f2596ed08b857cb9212', bytes: 156987808 },
      { path: 'wikitext-103-raw-v1/train-00001-of-00002.parquet', sha256: 'ba090ac30dbf5461e8dcbdd1a1b8e6f3cf9c2c756d64f0c1220450acd514f720', bytes: 157088770 },
    ],
    valid: [{ path: 'wikitext-103-raw-v1/validation-00000-of-00001.parquet', sha256: '204929b7ff9d6184953f867dedb860e40aa69c078fc1e54b3baaa8fb28511c4c', bytes: 657209 }],
    test: [{ path: 'wikitext-103-raw-v1/test-00000-of-00001.parquet', sha256: '5f1bea067869d04849c0f975a2b29c4ff47d867f484f5010ea5e861eab246d91', bytes: 732610 }],
  },
};
