// A minimal parquet writer for test fixtures (hyparquet-writer is not a dependency): one
// OPTIONAL BYTE_ARRAY/UTF8 column, data page v1, any number of row groups, PLAIN or dictionary
// (RLE_DICTIONARY) values, uncompressed or SNAPPY pages. Dictionary + snappy is what pyarrow
// writes by default, hence the shape of HF's `text` column.
// Format: https://github.com/apache/parquet-format (Thrift compact protocol for metadata).
import { snappyCompress } from './snappy.ts';

type T =
  | ['i32', number]
  | ['i64', number]
  | ['bin', Uint8Array | string]
  | ['struct', Record<number, T>]
  | ['list', 'i32' | 'bin' | 'struct', T[]];

const CODE = { i32: 5, i64: 6, bin: 8, list: 9, struct: 12 } as const;

class Out {
  bytes: number[] = [];
  u8(b: number) {
    this.bytes.push(b & 0xff);
  }
  varint(n: bigint) {
    while (n >= 0x80n) {
      this.u8(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.u8(Number(n));
  }
  zigzag(n: number) {
    const b = BigInt(n);
    this.varint(b >= 0n ? b << 1n : ((-b) << 1n) - 1n);
  }
  raw(b: Uint8Array) {
    for (const x of b) this.bytes.push(x);
  }
  value(v: T) {
    switch (v[0]) {
      case 'i32':
      case 'i64':
        this.zigzag(v[1]);
        break;
      case 'bin': {
        const b = typeof v[1] === 'string' ? new TextEncoder().encode(v[1]) : v[1];
        this.varint(BigInt(b.length));
        this.raw(b);
        break;
      }
      case 'struct': {
        let last = 0;
        for (const id of Object.keys(v[1]).map(Number).sort((a, b) => a - b)) {
          const f = v[1][id]!;
          const delta = id - last;
          if (delta > 0 && delta <= 15) this.u8((delta << 4) | CODE[f[0]]);
          else {
            this.u8(CODE[f[0]]);
            this.zigzag(id);
          }
          this.value(f);
          last = id;
        }
        this.u8(0); // STOP
        break;
      }
      case 'list': {
        const n = v[2].length;
        if (n < 15) this.u8((n << 4) | CODE[v[1]]);
        else {
          this.u8(0xf0 | CODE[v[1]]);
          this.varint(BigInt(n));
        }
        for (const e of v[2]) this.value(e);
        break;
      }
    }
  }
}

function thrift(v: T): Uint8Array {
  const o = new Out();
  o.value(v);
  return Uint8Array.from(o.bytes);
}

function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export interface WriterOptions {
  column?: string;
  rowGroupSize?: number;
  /** SNAPPY-compress every page (codec 1), as pyarrow does by default. */
  snappy?: boolean;
  /** A dictionary page plus RLE_DICTIONARY-encoded data pages, as pyarrow does by default. */
  dictionary?: boolean;
}

/** Build a parquet file with one optional string column (null entries become parquet nulls). */
export function writeStringParquet(rows: (string | null)[], opts: WriterOptions = {}): Uint8Array {
  const column = opts.column ?? 'text';
  const groupSize = Math.max(1, opts.rowGroupSize ?? rows.length);
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [enc.encode('PAR1')];
  let offset = 4;
  const rowGroups: T[] = [];
  /** Append one page (header + possibly compressed body); returns its offset and total size. */
  const page = (headerFields: Record<number, T>, body: Uint8Array): { at: number; size: number; raw: number } => {
    const stored = opts.snappy ? snappyCompress(body) : body;
    const header = thrift(['struct', { ...headerFields, 2: ['i32', body.length], 3: ['i32', stored.length] }]);
    const at = offset;
    chunks.push(header, stored);
    offset += header.length + stored.length;
    return { at, size: header.length + stored.length, raw: header.length + body.length };
  };
  const plain = (values: string[]): number[] => {
    const o = new Out();
    for (const v of values) {
      const b = enc.encode(v);
      o.raw(u32le(b.length));
      o.raw(b);
    }
    return o.bytes;
  };
  for (let g = 0; g < Math.max(1, Math.ceil(rows.length / groupSize)); g++) {
    const part = rows.slice(g * groupSize, (g + 1) * groupSize);
    const present = part.filter((r): r is string => r !== null);
    // Definition levels (1 = present, 0 = null) as RLE runs of length 1, length-prefixed.
    const levels = new Out();
    for (const r of part) {
      levels.varint(1n << 1n);
      levels.u8(r === null ? 0 : 1);
    }
    let dictPage: { at: number; size: number; raw: number } | null = null;
    let values: number[];
    if (opts.dictionary) {
      const dict = [...new Set(present)];
      const index = new Map(dict.map((v, i) => [v, i]));
      dictPage = page({ 1: ['i32', 2], 7: ['struct', { 1: ['i32', dict.length], 2: ['i32', 0] }] }, Uint8Array.from(plain(dict)));
      // Indices: bit width, then RLE runs (varint count << 1, value in ceil(width / 8) bytes).
      const width = dict.length <= 1 ? 0 : Math.ceil(Math.log2(dict.length));
      const idx = new Out();
      idx.u8(width);
      for (const v of present) {
        idx.varint(1n << 1n);
        const k = index.get(v)!;
        for (let b = 0; b < Math.ceil(width / 8); b++) idx.u8(k >> (8 * b));
      }
      values = idx.bytes;
    } else {
      values = plain(present);
    }
    const body = Uint8Array.from([...u32le(levels.bytes.length), ...levels.bytes, ...values]);
    const encoding = opts.dictionary ? 8 : 0; // RLE_DICTIONARY : PLAIN
    const data = page({ 1: ['i32', 0], 5: ['struct', { 1: ['i32', part.length], 2: ['i32', encoding], 3: ['i32', 3], 4: ['i32', 3] }] }, body);
    const first = dictPage ?? data;
    const stored = data.size + (dictPage?.size ?? 0);
    const raw = data.raw + (dictPage?.raw ?? 0);
    const meta: Record<number, T> = {
      1: ['i32', 6], // BYTE_ARRAY
      2: ['list', 'i32', opts.dictionary ? [['i32', 0], ['i32', 3], ['i32', 8]] : [['i32', 0], ['i32', 3]]],
      3: ['list', 'bin', [['bin', column]]],
      4: ['i32', opts.snappy ? 1 : 0], // SNAPPY : UNCOMPRESSED
      5: ['i64', part.length],
      6: ['i64', raw],
      7: ['i64', stored],
      9: ['i64', data.at],
    };
    if (dictPage) meta[11] = ['i64', dictPage.at];
    rowGroups.push([
      'struct',
      {
        1: ['list', 'struct', [['struct', { 2: ['i64', first.at], 3: ['struct', meta] }]]],
        2: ['i64', raw],
        3: ['i64', part.length],
      },
    ]);
  }
  const footer = thrift([
    'struct',
    {
      1: ['i32', 1],
      2: [
        'list',
        'struct',
        [
          ['struct', { 4: ['bin', 'schema'], 5: ['i32', 1] }],
          ['struct', { 1: ['i32', 6], 3: ['i32', 1], 4: ['bin', column], 6: ['i32', 0] }], // OPTIONAL UTF8
        ],
      ],
      3: ['i64', rows.length],
      4: ['list', 'struct', rowGroups],
      6: ['bin', 'sophia-gpt test parquet writer'],
    },
  ]);
  chunks.push(footer, u32le(footer.length), enc.encode('PAR1'));
  const total = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
