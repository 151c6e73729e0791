export * from './elementwise.ts';
export * from './reduce.ts';
export * from './views.ts';
export * from './matmul.ts';
export * from './gather.ts';
export * from './concat.ts';
export * from './softmax.ts';
export * from './creation.ts';
