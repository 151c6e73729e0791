// A minimal parquet writer for test fixtures (hyparquet-writer is not a dependency): one
// OPTIONAL BYTE_ARRAY/UTF8 column, PLAIN encoding, no compression, data page v1, any number of
// row groups. That is the shape of HF's `text` column, minus snappy compression.
// Format: https://github.com/apache/parquet-format (Thrift compact protocol for metadata).

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

/** Build a parquet file with one optional string column (null entries become parquet nulls). */
export function writeStringParquet(rows: (string | null)[], opts: { column?: string; rowGroupSize?: number } = {}): Uint8Array {
  const column = opts.column ?? 'text';
  const groupSize = Math.max(1, opts.rowGroupSize ?? rows.length);
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [enc.encode('PAR1')];
  let offset = 4;
  const rowGroups: T[] = [];
  for (let g = 0; g < Math.max(1, Math.ceil(rows.length / groupSize)); g++) {
    const part = rows.slice(g * groupSize, (g + 1) * groupSize);
    // Definition levels (1 = present, 0 = null) as RLE runs of length 1, length-prefixed.
    const levels = new Out();
    for (const r of part) {
      levels.varint(1n << 1n);
      levels.u8(r === null ? 0 : 1);
    }
    const values = new Out();
    for (const r of part) {
      if (r === null) continue;
      const b = enc.encode(r);
      values.raw(u32le(b.length));
      values.raw(b);
    }
    const body = Uint8Array.from([...u32le(levels.bytes.length), ...levels.bytes, ...values.bytes]);
    const header = thrift([
      'struct',
      {
        1: ['i32', 0], // DATA_PAGE
        2: ['i32', body.length],
        3: ['i32', body.length],
        5: ['struct', { 1: ['i32', part.length], 2: ['i32', 0], 3: ['i32', 3], 4: ['i32', 3] }],
      },
    ]);
    const pageOffset = offset;
    const size = header.length + body.length;
    chunks.push(header, body);
    offset += size;
    rowGroups.push([
      'struct',
      {
        1: [
          'list',
          'struct',
          [
            [
              'struct',
              {
                2: ['i64', pageOffset],
                3: [
                  'struct',
                  {
                    1: ['i32', 6], // BYTE_ARRAY
                    2: ['list', 'i32', [['i32', 0], ['i32', 3]]], // PLAIN, RLE
                    3: ['list', 'bin', [['bin', column]]],
                    4: ['i32', 0], // UNCOMPRESSED
                    5: ['i64', part.length],
                    6: ['i64', size],
                    7: ['i64', size],
                    9: ['i64', pageOffset],
                  },
                ],
              },
            ],
          ],
        ],
        2: ['i64', size],
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
