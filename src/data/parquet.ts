// Hugging Face's parquet export of Salesforce/wikitext: one file per split (WikiText-103 train
// is two shards), one string column `text`, one row per line of the classic file. HF's builder
// kept each non-blank line with its trailing "\n" and turned blank lines (" \n" in the classic
// files) into "". linesToText() undoes that, so the text — and therefore every token id and
// cache key — is the same whichever layout the corpus came from.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';

export class ParquetCorpusError extends Error {
  override name = 'ParquetCorpusError';
}

/** Read the `text` column of a parquet file as an array of strings (one per row). */
export async function readParquetTextColumn(path: string, column = 'text'): Promise<string[]> {
  const fail = (what: string, cause?: unknown): never => {
    throw new ParquetCorpusError(
      `Cannot read ${path} as a WikiText parquet file: ${what}. ` +
        `If it was downloaded, delete it and download it again; otherwise check that it is one of ` +
        `Salesforce/wikitext's parquet files.`,
      cause === undefined ? undefined : { cause },
    );
  };
  let file;
  let metadata;
  try {
    file = await asyncBufferFromFile(path);
    if (file.byteLength < 12) fail(`it is only ${file.byteLength} bytes long (truncated?)`);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    if (e instanceof ParquetCorpusError) throw e;
    return fail(`the footer is unreadable (${(e as Error).message}); the file is truncated or not parquet`, e);
  }
  const columns = parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(column)) fail(`it has no '${column}' column (columns: ${columns.join(', ') || 'none'})`);
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file, columns: [column] });
  } catch (e) {
    return fail(`its data pages are unreadable (${(e as Error).message})`, e);
  }
  if (rows.length !== Number(metadata.num_rows)) {
    fail(`the footer promises ${metadata.num_rows} rows but ${rows.length} were read`);
  }
  const out = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]![column];
    if (typeof v !== 'string') fail(`row ${i} of '${column}' is ${v === null ? 'null' : typeof v}, not a string`);
    out[i] = v as string;
  }
  return out;
}

/** Rows (HF convention) → classic WikiText text: "" → " \n", a missing final "\n" is added. */
export function linesToText(rows: readonly string[]): string {
  let s = '';
  const parts: string[] = [];
  for (const r of rows) {
    parts.push(r === '' ? ' \n' : r.endsWith('\n') ? r : `${r}\n`);
    if (parts.length >= 4096) {
      s += parts.join('');
      parts.length = 0;
    }
  }
  return s + parts.join('');
}
