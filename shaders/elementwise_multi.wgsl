// Several fused elementwise expressions over one shape, each stored into its own output:
// outI[indexI(flat)] = exprsAt(flat)[I]. Every output of an element is computed (all loads done)
// before any of them is stored, so an output may also be an input (θ ← f(θ, m), m ← g(m)) and
// an output that feeds another (θ' from m') uses the value computed in registers.
// Params: P(0) = element count, P(1 + I) = output I's offset, then the expressions' words,
// then (strided outputs only) their shapes and strides. Sums (optional): each invocation adds its
// elements of each sum expression and writes one partial per sum into `partials`.
{{PARAMS}}
{{OUT_DECLS}}
{{EXPR}}
{{SUM_DECLS}}
fn one(flat: u32, c: array<u32, {{RANK}}>) {
  let r = exprsAt(flat, c);
{{STORES}}
{{SUM_ACCUMULATE}}
}

{{MAIN}}
