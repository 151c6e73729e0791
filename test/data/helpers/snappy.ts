// A real (if simple) Snappy block compressor for test fixtures: literals plus back-references
// found with a 4-byte hash, so a reader's copy paths (1- and 2-byte offsets, overlapping copies)
// are exercised, not only literals. Parquet's SNAPPY codec is this raw block format, not the
// framed stream format. Spec: https://github.com/google/snappy/blob/main/format_description.txt
export function snappyCompress(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let n = input.length;
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0)); // preamble: uncompressed length, varint
    n >>>= 7;
  } while (n > 0);

  const literal = (from: number, to: number) => {
    for (let start = from; start < to; start += 65536) {
      const len = Math.min(65536, to - start);
      if (len <= 60) out.push((len - 1) << 2);
      else if (len <= 256) out.push(60 << 2, len - 1);
      else out.push(61 << 2, (len - 1) & 0xff, (len - 1) >> 8);
      for (let i = start; i < start + len; i++) out.push(input[i]!);
    }
  };
  const copy = (offset: number, len: number) => {
    while (len > 0) {
      // Keep at least 4 bytes for the last piece so the 1-byte-offset form stays usable.
      const piece = len > 64 ? (len - 64 < 4 ? len - 4 : 64) : len;
      if (piece >= 4 && piece <= 11 && offset < 2048) {
        out.push(((offset >> 8) << 5) | ((piece - 4) << 2) | 1, offset & 0xff);
      } else {
        out.push(((piece - 1) << 2) | 2, offset & 0xff, offset >> 8);
      }
      len -= piece;
    }
  };

  const table = new Map<number, number>();
  const key = (i: number) => input[i]! | (input[i + 1]! << 8) | (input[i + 2]! << 16) | (input[i + 3]! << 24);
  let pending = 0; // start of bytes not yet emitted
  let i = 0;
  while (i + 4 <= input.length) {
    const k = key(i);
    const prev = table.get(k);
    table.set(k, i);
    if (prev === undefined || i - prev > 0xffff) {
      i++;
      continue;
    }
    let len = 4;
    while (i + len < input.length && input[prev + len] === input[i + len]) len++;
    literal(pending, i);
    copy(i - prev, len);
    i += len;
    pending = i;
  }
  literal(pending, input.length);
  return Uint8Array.from(out);
}
