// Token-id cache: tokenizing WikiText-2 train takes ~11 s, reading its ids back ~20 ms.
//
// File layout (little-endian), 88-byte header then the ids:
//   0  8  magic "SGPTTOK\n"
//   8  4  format version (TOKEN_CACHE_VERSION)
//  12  4  bytes per id (2: uint16, enough for GPT-2's 50,257 ids)
//  16  8  number of ids
//  24 32  key: sha256 of (source text bytes, tokenizer fingerprint, tokenization options)
//  56 32  sha256 of the id payload (catches truncation and bit rot)
//  88  …  ids
// The file name carries the first 16 hex digits of the key, so a changed source, tokenizer or
// option simply misses; the header is re-checked on every read so a damaged or foreign file is
// an error, never a silently wrong token stream.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const TOKEN_CACHE_VERSION = 1;
const MAGIC = Buffer.from('SGPTTOK\n', 'latin1');
const HEADER_BYTES = 88;

/** Name of this project's per-user cache folder. */
export const CACHE_APP_NAME = 'sophia-gpt';

/** $XDG_CACHE_HOME/sophia-gpt, else ~/.cache/sophia-gpt. */
export function userCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  return xdg && xdg.length > 0 ? join(xdg, CACHE_APP_NAME) : join(homedir(), '.cache', CACHE_APP_NAME);
}

export type TokenCacheProblem = 'not-a-cache' | 'old-version' | 'new-version' | 'truncated' | 'corrupt' | 'wrong-key';

export class TokenCacheError extends Error {
  constructor(
    readonly problem: TokenCacheProblem,
    readonly path: string,
    what: string,
  ) {
    super(
      `Token cache ${path}: ${what}. It is only a cache: delete it (rm '${path}') or rebuild it ` +
        `(rebuildCache: true / --rebuild-cache) and the split will be tokenized again.`,
    );
    this.name = 'TokenCacheError';
  }
}

export interface TokenCacheKeyParts {
  /** sha256 (hex) of the exact text that was tokenized. */
  sourceSha256: string;
  /** TextTokenizer.fingerprint */
  tokenizer: string;
  /** Anything else that changes the ids (e.g. { detokenize: true }). */
  options: Record<string, unknown>;
}

/** sha256 hex of the parts; stable because options are serialised with sorted keys. */
export function tokenCacheKey(parts: TokenCacheKeyParts): string {
  const opts = Object.keys(parts.options)
    .sort()
    .map((k) => [k, parts.options[k]]);
  return createHash('sha256')
    .update(JSON.stringify({ source: parts.sourceSha256, tokenizer: parts.tokenizer, options: opts }))
    .digest('hex');
}

export function tokenCachePath(cacheDir: string, label: string, key: string): string {
  return join(cacheDir, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}.${key.slice(0, 16)}.tok`);
}

/** Write atomically: a crash leaves either no file or a complete one, never a torn one. */
export function writeTokenCache(path: string, key: string, ids: Uint16Array): void {
  if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`token cache key must be 64 hex digits, got ${key}`);
  const payload = Buffer.from(ids.buffer, ids.byteOffset, ids.byteLength);
  const le = isLittleEndian() ? payload : swap16(payload);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(TOKEN_CACHE_VERSION, 8);
  header.writeUInt32LE(2, 12);
  header.writeBigUInt64LE(BigInt(ids.length), 16);
  Buffer.from(key, 'hex').copy(header, 24);
  createHash('sha256').update(le).digest().copy(header, 56);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, Buffer.concat([header, le]));
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Read and fully verify a cache file written for `expectedKey`. */
export function readTokenCache(path: string, expectedKey: string): Uint16Array {
  const buf = readFileSync(path);
  if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) {
    if (buf.length < HEADER_BYTES && MAGIC.subarray(0, Math.min(8, buf.length)).equals(buf.subarray(0, 8))) {
      throw new TokenCacheError('truncated', path, `the file is ${buf.length} bytes, shorter than its ${HEADER_BYTES}-byte header`);
    }
    throw new TokenCacheError('not-a-cache', path, 'the file does not start with the token-cache magic "SGPTTOK"');
  }
  const version = buf.readUInt32LE(8);
  if (version < TOKEN_CACHE_VERSION) {
    throw new TokenCacheError(
      'old-version',
      path,
      `it was written in format version ${version} by an older version of this program; this version reads format ${TOKEN_CACHE_VERSION}`,
    );
  }
  if (version > TOKEN_CACHE_VERSION) {
    throw new TokenCacheError(
      'new-version',
      path,
      `it was written in format version ${version} by a newer version of this program; this version reads format ${TOKEN_CACHE_VERSION}`,
    );
  }
  const width = buf.readUInt32LE(12);
  if (width !== 2) throw new TokenCacheError('corrupt', path, `it declares ${width} bytes per id; format ${version} uses 2`);
  const count = Number(buf.readBigUInt64LE(16));
  const key = buf.subarray(24, 56).toString('hex');
  if (key !== expectedKey) {
    throw new TokenCacheError(
      'wrong-key',
      path,
      `it holds ids for key ${key.slice(0, 16)}… but ${expectedKey.slice(0, 16)}… was expected (another source text, tokenizer or option)`,
    );
  }
  const payload = buf.subarray(HEADER_BYTES);
  if (payload.length !== count * 2) {
    throw new TokenCacheError(
      payload.length < count * 2 ? 'truncated' : 'corrupt',
      path,
      `its header promises ${count} ids (${count * 2} bytes) but ${payload.length} bytes follow`,
    );
  }
  const sum = createHash('sha256').update(payload).digest();
  if (!sum.equals(buf.subarray(56, 88))) {
    throw new TokenCacheError('corrupt', path, 'the ids do not match the checksum in its header (the file is damaged)');
  }
  // Copy into a fresh, aligned buffer (readFileSync's Buffer may sit at an odd offset in a pool).
  const ids = new Uint16Array(count);
  const view = Buffer.from(ids.buffer);
  payload.copy(view);
  if (!isLittleEndian()) view.swap16(); // in place
  return ids;
}

function isLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

function swap16(b: Buffer): Buffer {
  return Buffer.from(b).swap16();
}
