// Loads WGSL templates from shaders/ and fills their {{PLACEHOLDERS}}.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('../../shaders/', import.meta.url));
const cache = new Map<string, string>();

export function shaderTemplate(name: string): string {
  let s = cache.get(name);
  if (s === undefined) {
    s = readFileSync(dir + name + '.wgsl', 'utf8');
    cache.set(name, s);
  }
  return s;
}

export function fillTemplate(name: string, values: Record<string, string | number>): string {
  return shaderTemplate(name).replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`internal: shader ${name}.wgsl needs {{${key}}}`);
    return String(values[key]);
  });
}

/** The params uniform every kernel reads through P(i): `words` 32-bit words. */
export function paramsBlock(words: number): string {
  const vec4s = Math.max(1, Math.ceil(words / 4));
  return `struct Params { w: array<vec4<u32>, ${vec4s}> };
@group(0) @binding(0) var<uniform> params: Params;
fn P(i: u32) -> u32 { return params.w[i >> 2u][i & 3u]; }
fn PF(i: u32) -> f32 { return bitcast<f32>(P(i)); }`;
}
