// Realises a fused elementwise expression: out[index(flat)] = expr(flat).
// EXPR (generated from the expression tree) defines `fn expr(flat: u32) -> f32`.
// Params: P(0) = element count, P(1) = output offset, then the expression's words,
// then (strided output only) the output strides.
{{PARAMS}}
@group(0) @binding(1) var<storage, read_write> out: array<{{OUT_TYPE}}>;
{{EXPR}}
fn one(flat: u32, c: array<u32, {{RANK}}>) {
{{OUT_INDEX}}
  out[o] = {{OUT_TYPE}}(exprAt(flat, c));
}

{{MAIN}}
