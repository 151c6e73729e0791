// Resumable, verified downloads. Bytes go to `<dest>.part` (resumed with an HTTP Range request
// after an interruption), the finished file is hashed, and only a file whose SHA-256 (and size)
// matches its pins is renamed onto `dest` — rename within a folder is atomic, so `dest` is either
// absent or complete and verified, never half-written. A file whose hash is not pinned but whose
// size is gets its first download's hash recorded in `<dest>.sha256` (trust on first use), and
// every later use is checked against that record.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createProgress, formatBytes } from './progress.ts';

export class DownloadError extends Error {
  override name = 'DownloadError';
}

export class ChecksumError extends DownloadError {
  override name = 'ChecksumError';
}

export interface DownloadOptions {
  url: string;
  dest: string;
  /** Expected SHA-256 (hex); null = not pinned. */
  sha256: string | null;
  /** Expected size in bytes; null/absent = not pinned. With neither pin the file is refused unless allowUnpinned. */
  bytes?: number | null;
  allowUnpinned?: boolean;
  /** Give up when the server has not answered within this many ms (default 30 s). */
  connectTimeoutMs?: number;
  /** Progress bar on stderr; default: when stderr is a terminal. */
  progress?: boolean;
  /** Where the bar is drawn (default: stderr). */
  progressStream?: NodeJS.WritableStream;
  /** Messages for the user (default: stderr). */
  log?: (line: string) => void;
}

export interface DownloadResult {
  path: string;
  sha256: string;
  /** Bytes that were already in `<dest>.part` and were not fetched again. */
  resumedFrom: number;
  /** True when `dest` already existed (and matched its pin) so nothing was fetched. */
  alreadyPresent: boolean;
}

/**
 * For a downloaded file: re-hash it against the SHA-256 recorded beside it (`<path>.sha256`) when
 * it was downloaded and verified. Returns false when there is no record (nothing checked); a
 * mismatch is a ChecksumError.
 */
export async function checkRecordedSha256(path: string): Promise<boolean> {
  const recorded = await readRecord(`${path}.sha256`);
  if (recorded === null) return false;
  const have = await sha256File(path);
  if (have !== recorded) {
    throw new ChecksumError(
      `${path} has SHA-256 ${have}, not the ${recorded} recorded in ${path}.sha256 when it was downloaded, ` +
        `i.e. the file changed since. Delete it and run again to download a fresh copy.`,
    );
  }
  return true;
}

async function readRecord(path: string): Promise<string | null> {
  try {
    const s = (await readFile(path, 'utf8')).trim().toLowerCase();
    return /^[0-9a-f]{64}$/.test(s) ? s : null;
  } catch {
    return null;
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function sizeOf(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch {
    return null;
  }
}

export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const { url, dest } = opts;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const pin = opts.sha256?.toLowerCase() ?? null;
  if (pin !== null && !/^[0-9a-f]{64}$/.test(pin)) throw new Error(`Bad SHA-256 pin for ${url}: ${opts.sha256}`);
  const size = opts.bytes ?? null;
  if (pin === null && size === null && !opts.allowUnpinned) {
    throw new DownloadError(
      `Refusing to download ${url}: neither a SHA-256 nor a size is pinned for it in this version ` +
        `(HF_PARQUET_FILES in src/data/datasets.ts), so the file could not be verified. ` +
        `Pass allowUnpinned: true (examples/tokenize.ts: --allow-unpinned) to download it anyway, or place the files ` +
        `yourself and point WIKITEXT_DIR / --data-dir at them.`,
    );
  }

  const record = `${dest}.sha256`;
  const destSize = await sizeOf(dest);
  if (destSize !== null) {
    const have = await sha256File(dest);
    const recorded = pin === null ? await readRecord(record) : null;
    const expected = pin ?? recorded;
    const what = pin !== null ? 'the pinned' : `the ${recorded} recorded in ${record} when it was downloaded, i.e. the file changed since`;
    if (expected !== null && have !== expected) {
      throw new ChecksumError(`${dest} exists but its SHA-256 is ${have}, not ${what}. Delete it and run again to download a fresh copy.`);
    }
    if (size !== null && destSize !== size) {
      throw new ChecksumError(`${dest} exists but holds ${destSize} bytes, not the pinned ${size}. Delete it and run again to download a fresh copy.`);
    }
    return { path: dest, sha256: have, resumedFrom: 0, alreadyPresent: true };
  }

  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = (await sizeOf(part)) ?? 0;
  const resumedFrom = have;
  // Only the wait for the response is bounded: a slow but steady body may take as long as it needs.
  const abort = new AbortController();
  const timeoutMs = opts.connectTimeoutMs ?? 30_000;
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
  const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, redirect: 'follow', signal: abort.signal })
    .catch((e: unknown) => {
      const why = abort.signal.aborted ? (abort.signal.reason as Error).message : (e as Error).message;
      throw new DownloadError(
        `Could not connect to download ${url} (${why}). ` +
          `Check the network, or place the files yourself and point WIKITEXT_DIR / --data-dir at them.`,
        { cause: e },
      );
    })
    .finally(() => clearTimeout(timer));

  let total: number | null = null;
  let append = false;
  if (res.status === 416 && have > 0) {
    // Nothing left to send: the .part file should already hold the whole file ("bytes */size").
    await res.body?.cancel();
    const m = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
    if (m && Number(m[1]) !== have) {
      await rm(part, { force: true });
      throw new DownloadError(
        `${part} holds ${have} bytes but ${url} is ${m[1]} bytes long; the partial file was deleted, run again to start over.`,
      );
    }
    total = have;
  } else if (res.status === 206 && have > 0) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== have) {
      await res.body?.cancel();
      await rm(part, { force: true });
      throw new DownloadError(
        `${url} answered the resume request for bytes ${have}- with Content-Range ` +
          `'${res.headers.get('content-range')}'; the partial file was deleted, run again to start over.`,
      );
    }
    append = true;
    total = m[3] === '*' ? null : Number(m[3]);
  } else if (res.ok) {
    // 200: a fresh download (or a server that ignores Range — then start over).
    have = 0;
    const len = res.headers.get('content-length');
    total = len === null ? null : Number(len);
  } else {
    await res.body?.cancel();
    throw new DownloadError(`Downloading ${url} failed: HTTP ${res.status} ${res.statusText}.`);
  }

  if (size !== null && total !== null && total !== size) {
    await res.body?.cancel();
    await rm(part, { force: true });
    throw new ChecksumError(
      `${url} is ${total} bytes long, not the pinned ${size}: the server holds a different file. ` +
        `Nothing was installed. Check the download address (a mirror?) or the pin in src/data/datasets.ts.`,
    );
  }

  if (res.status !== 416) {
    const bar = createProgress({ label: `download ${url.split('/').pop()}`, total: total ?? 0, enabled: opts.progress, stream: opts.progressStream, format: formatBytes });
    const fh = await open(part, append ? 'a' : 'w');
    try {
      if (!res.body) throw new DownloadError(`Downloading ${url} failed: empty response body.`);
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        have += chunk.length;
        bar.update(have);
      }
      await fh.sync(); // on disk before it is verified and renamed into place
    } catch (e) {
      throw new DownloadError(
        `Download of ${url} was interrupted after ${formatBytes(have)} (${(e as Error).message}). ` +
          `The bytes so far are kept in ${part}; run again to resume.`,
        { cause: e },
      );
    } finally {
      await fh.close();
      bar.finish();
    }
    if (total !== null && have !== total) {
      throw new DownloadError(
        `Download of ${url} ended early: ${have} of ${total} bytes. The bytes so far are kept in ${part}; run again to resume.`,
      );
    }
  }

  const partSize = (await sizeOf(part)) ?? 0;
  if (size !== null && partSize !== size) {
    await rm(part, { force: true });
    throw new ChecksumError(`Size mismatch for ${url}: expected ${size} bytes, got ${partSize}. The download was deleted and nothing was installed. Run again.`);
  }
  const got = await sha256File(part);
  if (pin !== null && got !== pin) {
    await rm(part, { force: true });
    throw new ChecksumError(
      `Checksum mismatch for ${url}: expected SHA-256 ${pin}, got ${got}. The download was deleted ` +
        `and nothing was installed. Run again; if it fails again the file on the server has changed ` +
        `and the pin in src/data/datasets.ts must be reviewed.`,
    );
  }
  // Record (pinned or not) before the rename: a final-named file always has its record, so
  // every later read of it from the cache re-hashes it (readSplitText).
  await writeFile(record, `${got}\n`, { flush: true });
  if (pin === null) {
    log(
      size !== null
        ? `note: ${url.split('/').pop()}: size ${size} bytes verified; no SHA-256 is pinned in this version, so the hash of this download (${got}) was recorded in ${record} and is checked on every later use.`
        : `warning: ${url} is not pinned; downloaded file has SHA-256 ${got} (recorded in ${record}; pin it in src/data/datasets.ts).`,
    );
  }
  await rename(part, dest);
  await syncDir(dirname(dest)); // the rename itself survives a power cut
  return { path: dest, sha256: got, resumedFrom, alreadyPresent: false };
}

/** fsync a folder, so that a rename inside it is durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
