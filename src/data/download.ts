// Resumable, verified downloads. Bytes go to `<dest>.part` (resumed with an HTTP Range request
// after an interruption), the finished file is hashed, and only a file whose SHA-256 matches
// its pin is renamed onto `dest` — rename within a folder is atomic, so `dest` is either absent
// or complete and verified, never half-written.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
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
  /** Expected SHA-256 (hex); null = not pinned (refused unless allowUnpinned). */
  sha256: string | null;
  allowUnpinned?: boolean;
  /** Progress bar on stderr; default: when stderr is a terminal. */
  progress?: boolean;
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
  if (pin === null && !opts.allowUnpinned) {
    throw new DownloadError(
      `Refusing to download ${url}: no SHA-256 is pinned for it in this version ` +
        `(HF_PARQUET_FILES in src/data/datasets.ts), so the file could not be verified. ` +
        `Pass allowUnpinned: true (--allow-unpinned) to download it anyway, or place the files ` +
        `yourself and point WIKITEXT_DIR / --data-dir at them.`,
    );
  }

  if ((await sizeOf(dest)) !== null) {
    const have = await sha256File(dest);
    if (pin !== null && have !== pin) {
      throw new ChecksumError(
        `${dest} exists but its SHA-256 is ${have}, not the pinned ${pin}. ` +
          `Delete it and run again to download a fresh copy.`,
      );
    }
    return { path: dest, sha256: have, resumedFrom: 0, alreadyPresent: true };
  }

  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let have = (await sizeOf(part)) ?? 0;
  const resumedFrom = have;
  const res = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {}, redirect: 'follow' }).catch(
    (e: unknown) => {
      throw new DownloadError(
        `Could not connect to download ${url} (${(e as Error).message}). ` +
          `Check the network, or place the files yourself and point WIKITEXT_DIR / --data-dir at them.`,
        { cause: e },
      );
    },
  );

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

  if (res.status !== 416) {
    const bar = createProgress({ label: `download ${url.split('/').pop()}`, total: total ?? 0, enabled: opts.progress, format: formatBytes });
    const fh = await open(part, append ? 'a' : 'w');
    try {
      if (!res.body) throw new DownloadError(`Downloading ${url} failed: empty response body.`);
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        await fh.write(chunk);
        have += chunk.length;
        bar.update(have);
      }
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

  const got = await sha256File(part);
  if (pin !== null && got !== pin) {
    await rm(part, { force: true });
    throw new ChecksumError(
      `Checksum mismatch for ${url}: expected SHA-256 ${pin}, got ${got}. The download was deleted ` +
        `and nothing was installed. Run again; if it fails again the file on the server has changed ` +
        `and the pin in src/data/datasets.ts must be reviewed.`,
    );
  }
  if (pin === null) log(`warning: ${url} is not pinned; downloaded file has SHA-256 ${got} (pin it in src/data/datasets.ts).`);
  await rename(part, dest);
  return { path: dest, sha256: got, resumedFrom, alreadyPresent: false };
}
