// Method-call sugar (x.matmul(w).add(b)) for the differentiable ops. The Tensor class lives in
// src/tensor, below autograd, so the methods are attached here, where the ops are defined.
import { Tensor } from '../tensor/tensor.ts';
import * as ops from './ops/index.ts';
import { backward } from './functional.ts';
import type { Axes } from './ops/reduce.ts';
import type { Operand } from './ops/elementwise.ts';

declare module '../tensor/tensor.ts' {
  interface Tensor {
    add(b: Operand): Tensor;
    sub(b: Operand): Tensor;
    mul(b: Operand): Tensor;
    div(b: Operand): Tensor;
    pow(b: Operand): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    tanh(): Tensor;
    abs(): Tensor;
    matmul(b: Tensor): Tensor;
    sum(axes?: Axes, keepdims?: boolean): Tensor;
    mean(axes?: Axes, keepdims?: boolean): Tensor;
    max(axes?: Axes, keepdims?: boolean): Tensor;
    reshape(shape: readonly number[]): Tensor;
    permute(perm: readonly number[]): Tensor;
    transpose(d0?: number, d1?: number): Tensor;
    expand(shape: readonly number[]): Tensor;
    detach(): Tensor;
    backward(seed?: Tensor): void;
    /** Marks this tensor as a leaf whose gradient is wanted; returns it. */
    requiresGrad_(on?: boolean): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (b) { return ops.add(this, b); };
P.sub = function (b) { return ops.sub(this, b); };
P.mul = function (b) { return ops.mul(this, b); };
P.div = function (b) { return ops.div(this, b); };
P.pow = function (b) { return ops.pow(this, b); };
P.neg = function () { return ops.neg(this); };
P.exp = function () { return ops.exp(this); };
P.log = function () { return ops.log(this); };
P.sqrt = function () { return ops.sqrt(this); };
P.tanh = function () { return ops.tanh(this); };
P.abs = function () { return ops.abs(this); };
P.matmul = function (b) { return ops.matmul(this, b); };
P.sum = function (axes, keepdims) { return ops.sum(this, axes, keepdims); };
P.mean = function (axes, keepdims) { return ops.mean(this, axes, keepdims); };
P.max = function (axes, keepdims) { return ops.max(this, axes, keepdims); };
P.reshape = function (shape) { return ops.reshape(this, shape); };
P.permute = function (perm) { return ops.permute(this, perm); };
P.transpose = function (d0, d1) { return ops.transpose(this, d0, d1); };
P.expand = function (shape) { return ops.expand(this, shape); };
P.detach = function () { return ops.detach(this); };
P.backward = function (seed) { backward(this, seed); };
P.requiresGrad_ = function (on = true) {
  if (this.gradFn) throw new Error('requiresGrad_(): only leaf tensors can be marked; this one was computed by an op (detach() it first)');
  if (on && this.dtype === 'i32') throw new Error(`requiresGrad_(): only float (f32, f16) tensors can require grad, this one is ${this.dtype}`);
  this.requiresGrad = on;
  return this;
};
