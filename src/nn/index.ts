export { Module, functionalCall } from './module.ts';
export * from './functional.ts';
export { GPT2, GPT2_PRESETS, gpt2Config, type GPT2Config } from './gpt2.ts';
export { loadGPT2, saveGPT2, configFromHF, configToHF } from './hf.ts';
export * from './safetensors.ts';
export { generate, sampleToken, type GenerateOptions } from './generate.ts';
export { autocast, autocastPrecision, lowp, fullp, type Precision } from './autocast.ts';
