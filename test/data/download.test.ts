// Downloads against a local server on 127.0.0.1 with files made here — never the internet.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HF_BASE_URL, HF_PARQUET_FILES, HF_REVISION, SPLITS, type RemoteFile, type Split } from '../../src/data/datasets.ts';
import { ChecksumError, DownloadError, downloadFile } from '../../src/data/download.ts';
import { readSplitText, resolveCorpus } from '../../src/data/wikitext.ts';
import { makeTmp } from './helpers/env.ts';
import { startFileServer, type TestServer } from './helpers/http.ts';
import { writeStringParquet } from './helpers/parquet-writer.ts';

const tmp = makeTmp();
afterAll(tmp.cleanup);
let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const payload = randomBytes(200_000);
let n = 0;
const fresh = () => join(tmp.dir, `case${n++}`, 'file.bin');
const quiet = { progress: false, log: () => {} };

describe('downloadFile', () => {
  it('downloads, verifies and places the file; no .part is left', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    const r = await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), ...quiet });
    expect(r).toMatchObject({ path: dest, sha256: sha(payload), resumedFrom: 0, alreadyPresent: false });
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    // Present and matching: nothing is fetched again.
    const again = await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), ...quiet });
    expect(again.alreadyPresent).toBe(true);
    expect(server.requests.length).toBe(1);
  });

  it('draws a progress bar in bytes that ends at 100 % of the file, resumed or not', async () => {
    server = await startFileServer({ 'f.bin': payload }, { cutFirstAfter: 70_000 });
    const dest = fresh();
    const frames: string[] = [];
    const stream = new Writable({ write: (chunk, _enc, done) => (frames.push(String(chunk)), done()) });
    const opts = { url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), progress: true, progressStream: stream, log: () => {} };
    await downloadFile(opts).catch(() => {}); // cut off at 70,000 bytes
    const cut = frames.join('').split('\r').filter(Boolean).at(-1)!;
    expect(cut).toMatch(/^download f\.bin \[#*\.+\] +\d+% 68\.4 KiB\/195\.3 KiB \d+\.\ds/);
    frames.length = 0;
    await downloadFile(opts);
    const text = frames.join('');
    expect(text.endsWith('\n')).toBe(true); // the bar's line is finished, not left for the next output
    const last = text.split('\r').filter(Boolean).at(-1)!;
    expect(last).toMatch(/^download f\.bin \[#{24}\] 100% 195\.3 KiB\/195\.3 KiB \d+\.\ds/);
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    server = await startFileServer({ 'f.bin': payload }, { cutFirstAfter: 70_000 });
    const dest = fresh();
    const opts = { url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), ...quiet };
    const err = await downloadFile(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DownloadError);
    expect((err as Error).message).toMatch(/run again to resume/);
    // Atomic placement: the destination does not exist while the download is incomplete.
    expect(existsSync(dest)).toBe(false);
    const partial = statSync(`${dest}.part`).size;
    expect(partial).toBe(70_000);
    const r = await downloadFile(opts);
    expect(r.resumedFrom).toBe(partial);
    expect(server.requests.at(-1)).toMatchObject({ range: `bytes=${partial}-`, status: 206 });
    expect(readFileSync(dest).equals(payload)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('treats a complete .part (416 on resume) as done, after verifying it', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(`${dest}.part`, payload);
    const r = await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), ...quiet });
    expect(server.requests[0]).toMatchObject({ status: 416 });
    expect(r.resumedFrom).toBe(payload.length);
    expect(readFileSync(dest).equals(payload)).toBe(true);
  });

  it('starts over when the server ignores the Range header', async () => {
    server = await startFileServer({ 'f.bin': payload }, { ignoreRange: true });
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(`${dest}.part`, payload.subarray(0, 1234));
    await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: sha(payload), ...quiet });
    expect(server.requests[0]).toMatchObject({ range: 'bytes=1234-', status: 200 });
    expect(readFileSync(dest).equals(payload)).toBe(true);
  });

  it('rejects a checksum mismatch and installs nothing', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    const wrong = sha(Buffer.from('something else'));
    const err = await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: wrong, ...quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as Error).message).toContain(`expected SHA-256 ${wrong}, got ${sha(payload)}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('rejects an existing destination that does not match its pin', async () => {
    const dest = fresh();
    mkdirSync(join(dest, '..'), { recursive: true });
    writeFileSync(dest, 'tampered');
    const err = await downloadFile({ url: 'http://127.0.0.1:9/never', dest, sha256: sha(payload), ...quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as Error).message).toMatch(/exists but its SHA-256 is .* Delete it/);
  });

  it('refuses unpinned files unless allowed, and then reports the hash', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    const url = `${server.baseUrl}/f.bin`;
    await expect(downloadFile({ url, dest, sha256: null, ...quiet })).rejects.toThrow(/Refusing to download .*--allow-unpinned/);
    expect(server.requests.length).toBe(0);
    const lines: string[] = [];
    const r = await downloadFile({ url, dest, sha256: null, allowUnpinned: true, progress: false, log: (l) => lines.push(l) });
    expect(r.sha256).toBe(sha(payload));
    expect(lines.join('\n')).toContain(sha(payload));
  });

  it('a pinned size without a pinned hash: verified, the hash recorded, later tampering caught', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    const url = `${server.baseUrl}/f.bin`;
    const lines: string[] = [];
    const r = await downloadFile({ url, dest, sha256: null, bytes: payload.length, progress: false, log: (l) => lines.push(l) });
    expect(r.sha256).toBe(sha(payload));
    expect(readFileSync(`${dest}.sha256`, 'utf8').trim()).toBe(sha(payload));
    expect(lines.join('\n')).toMatch(/size 200000 bytes verified; no SHA-256 is pinned.*recorded/);
    expect((await downloadFile({ url, dest, sha256: null, bytes: payload.length, ...quiet })).alreadyPresent).toBe(true);
    const changed = Buffer.from(payload);
    changed[123] ^= 1;
    writeFileSync(dest, changed);
    await expect(downloadFile({ url, dest, sha256: null, bytes: payload.length, ...quiet })).rejects.toThrow(/recorded in .*\.sha256 when it was downloaded, i\.e\. the file changed since/);
  });

  it('a server file of another size than the pin is refused before its body is read', async () => {
    server = await startFileServer({ 'f.bin': payload });
    const dest = fresh();
    const err = await downloadFile({ url: `${server.baseUrl}/f.bin`, dest, sha256: null, bytes: payload.length + 1, ...quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect((err as Error).message).toMatch(/is 200000 bytes long, not the pinned 200001/);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('gives up on a server that never answers, with a clear message', async () => {
    const { createServer } = await import('node:net');
    const silent = createServer(() => {}); // accepts connections, never replies
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const err = await downloadFile({ url: `http://127.0.0.1:${port}/f.bin`, dest: fresh(), sha256: sha(payload), connectTimeoutMs: 300, ...quiet }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DownloadError);
      expect((err as Error).message).toMatch(/no answer within 0\.3 s/);
    } finally {
      silent.close();
    }
  });

  it('reports HTTP errors', async () => {
    server = await startFileServer({});
    await expect(downloadFile({ url: `${server.baseUrl}/missing.bin`, dest: fresh(), sha256: sha(payload), ...quiet })).rejects.toThrow(
      /HTTP 404/,
    );
  });
});

describe('HF parquet table', () => {
  it('lists the official Salesforce/wikitext files at a fixed Hub commit, sizes pinned, the raw files hash-pinned', () => {
    expect(HF_BASE_URL).toBe(`https://huggingface.co/datasets/Salesforce/wikitext/resolve/${HF_REVISION}`);
    expect(HF_REVISION).toMatch(/^[0-9a-f]{40}$/);
    expect(HF_PARQUET_FILES['wikitext-2-raw'].train[0]!.path).toBe('wikitext-2-raw-v1/train-00000-of-00001.parquet');
    expect(HF_PARQUET_FILES['wikitext-2'].valid[0]!.path).toBe('wikitext-2-v1/validation-00000-of-00001.parquet');
    expect(HF_PARQUET_FILES['wikitext-103'].train.map((f) => f.path)).toEqual([
      'wikitext-103-v1/train-00000-of-00002.parquet',
      'wikitext-103-v1/train-00001-of-00002.parquet',
    ]);
    for (const splits of Object.values(HF_PARQUET_FILES))
      for (const files of Object.values(splits))
        for (const f of files) {
          expect(f.sha256 === null || /^[0-9a-f]{64}$/.test(f.sha256)).toBe(true);
          expect(Number.isInteger(f.bytes) && f.bytes! > 100_000, f.path).toBe(true);
        }
    // WikiText-2 and -103 share their valid/test articles: the raw files are the same bytes.
    for (const split of ['valid', 'test'] as const) {
      expect(HF_PARQUET_FILES['wikitext-103-raw'][split][0]!.bytes).toBe(HF_PARQUET_FILES['wikitext-2-raw'][split][0]!.bytes);
      expect(HF_PARQUET_FILES['wikitext-103-raw'][split][0]!.sha256).toBe(HF_PARQUET_FILES['wikitext-2-raw'][split][0]!.sha256);
    }
    for (const name of ['wikitext-2-raw', 'wikitext-103-raw'] as const)
      for (const split of SPLITS) for (const f of HF_PARQUET_FILES[name][split]) expect(f.sha256, f.path).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('resolveCorpus download path', () => {
  const lines: Record<Split, string[]> = {
    train: ['', ' = A = \n', '', ' alpha beta . \n', ''],
    valid: ['', ' = B = \n', '', ' gamma . \n'],
    test: ['', ' = C = \n', '', ' delta @-@ epsilon . \n'],
  };
  const files: Record<string, Uint8Array> = {};
  const remote = {} as Record<Split, RemoteFile[]>;
  for (const split of SPLITS) {
    const path = HF_PARQUET_FILES['wikitext-2'][split][0]!.path;
    files[path] = writeStringParquet(lines[split]);
    remote[split] = [{ path, sha256: sha(files[path]!) }];
  }

  it('downloads the parquet files into the cache and reads them; the next run finds them there', async () => {
    server = await startFileServer(files);
    const cacheDir = join(tmp.dir, 'usercache');
    const opts = {
      dataset: 'wikitext-2' as const,
      env: {},
      cacheDir,
      allowDownload: true,
      downloadBaseUrl: server.baseUrl,
      remoteFiles: remote,
      ...quiet,
    };
    const corpus = await resolveCorpus(opts);
    expect(corpus.origin).toBe('download');
    expect(corpus.dir).toBe(join(cacheDir, 'wikitext', 'wikitext-2-v1'));
    expect(await readSplitText(corpus, 'test', { verify: false })).toBe(' \n = C = \n \n delta @-@ epsilon . \n');
    expect(server.requests.map((r) => r.path).sort()).toEqual(Object.keys(files).sort());
    const again = await resolveCorpus(opts);
    expect(again.origin).toBe('cache');
    expect(server.requests.length).toBe(3);
  });

  it('size-pinned files (the real table\'s case) are recorded on download and re-checked when read from the cache', async () => {
    server = await startFileServer(files);
    const sized = Object.fromEntries(SPLITS.map((s) => [s, remote[s].map((f) => ({ path: f.path, sha256: null, bytes: files[f.path]!.length }))]));
    const opts = { dataset: 'wikitext-2' as const, env: {}, cacheDir: join(tmp.dir, 'usercache-sized'), allowDownload: true, downloadBaseUrl: server.baseUrl, ...quiet };
    const corpus = await resolveCorpus({ ...opts, remoteFiles: sized as Record<Split, RemoteFile[]> });
    const again = await resolveCorpus(opts);
    expect(again.origin).toBe('cache');
    const src = again.splits.test!;
    if (src.kind !== 'parquet') throw new Error('expected parquet');
    expect(readFileSync(`${src.paths[0]}.sha256`, 'utf8').trim()).toBe(sha(files[src.paths[0]!.split('/wikitext/')[1]!]!));
    expect(await readSplitText(corpus, 'test', { verify: false })).toBe(' \n = C = \n \n delta @-@ epsilon . \n');
    const bytes = readFileSync(src.paths[0]!);
    bytes[bytes.length - 9] ^= 1; // inside the footer length/metadata: any change counts
    writeFileSync(src.paths[0]!, bytes);
    await expect(readSplitText(again, 'test')).rejects.toThrow(/recorded in .*\.sha256 when it was downloaded/);
  });

  it('hash-pinned files are recorded on download too, so a cached copy that changes is caught when read', async () => {
    // Before, only unpinned downloads left a record: a pinned file in the cache was never re-hashed.
    server = await startFileServer(files);
    const opts = { dataset: 'wikitext-2' as const, env: {}, cacheDir: join(tmp.dir, 'usercache-pinned'), allowDownload: true, downloadBaseUrl: server.baseUrl, remoteFiles: remote, ...quiet };
    await resolveCorpus(opts);
    const again = await resolveCorpus(opts);
    const src = again.splits.test!;
    if (src.kind !== 'parquet') throw new Error('expected parquet');
    expect(readFileSync(`${src.paths[0]}.sha256`, 'utf8').trim()).toBe(remote.test[0]!.sha256);
    const bytes = readFileSync(src.paths[0]!);
    bytes[bytes.length - 9] ^= 1;
    writeFileSync(src.paths[0]!, bytes);
    await expect(readSplitText(again, 'test')).rejects.toThrow(/recorded in .*\.sha256 when it was downloaded/);
  });

  it("a hand-placed shard of a pinned file's size must match its pin; other sizes are another revision", async () => {
    const pin = HF_PARQUET_FILES['wikitext-2-raw'].test[0]!;
    const path = join(tmp.dir, 'placed', ...pin.path.split('/'));
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, randomBytes(pin.bytes!));
    const corpus = { dataset: 'wikitext-2-raw' as const, title: 'WikiText-2 (raw)', origin: 'data-dir' as const, dir: join(path, '..'), splits: { test: { kind: 'parquet' as const, paths: [path] } }, banner: null };
    await expect(readSplitText(corpus, 'test')).rejects.toThrow(/has the size of Hugging Face's wikitext-2-raw-v1\/test-00000-of-00001\.parquet .* not its pinned 5f1bea06/);
    // One byte shorter: not HF's file, so no pin applies (the parquet reader then refuses it).
    writeFileSync(path, randomBytes(pin.bytes! - 1));
    await expect(readSplitText(corpus, 'test')).rejects.not.toThrow(/pinned/);
  });

  it('a failed download of an explicitly requested corpus is an error that says why', async () => {
    server = await startFileServer(files);
    const bad = { ...remote, valid: [{ path: remote.valid[0]!.path, sha256: 'f'.repeat(64) }] };
    const err = await resolveCorpus({
      dataset: 'wikitext-2',
      env: {},
      cacheDir: join(tmp.dir, 'usercache2'),
      allowDownload: true,
      downloadBaseUrl: server.baseUrl,
      remoteFiles: bad,
      ...quiet,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/was requested but not found[\s\S]*Download failed: Checksum mismatch/);
  });

  it('the default job falls back to the embedded corpus when the download fails, and says why', async () => {
    const c = await resolveCorpus({ env: {}, cacheDir: join(tmp.dir, 'usercache4'), allowDownload: true, downloadBaseUrl: 'http://127.0.0.1:9', ...quiet });
    expect(c.dataset).toBe('sotu');
    expect(c.banner).toMatch(/Download failed: Could not connect to download http:\/\/127\.0\.0\.1:9\/wikitext-2-v1\/train/);
  });

  it('the real table (sizes pinned) downloads without allowUnpinned: an unreachable server is the error', async () => {
    const err = await resolveCorpus({
      dataset: 'wikitext-2',
      env: {},
      cacheDir: join(tmp.dir, 'usercache3'),
      allowDownload: true,
      downloadBaseUrl: 'http://127.0.0.1:9',
      ...quiet,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/Download failed: Could not connect to download http:\/\/127\.0\.0\.1:9\/wikitext-2-v1\/train-00000-of-00001\.parquet/);
  });
});
