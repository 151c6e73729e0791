// `npm run doctor`: what WebGPU adapter the engine runs on, its features and limits.
import { describeAdapter, init, NoAdapterError } from '../src/index.ts';

try {
  const c = await init();
  console.log(`adapter:  ${describeAdapter(c)}`);
  console.log(`backend:  ${(c.adapterInfo as unknown as { backendType?: string }).backendType ?? 'vulkan/metal/d3d12 (via Dawn)'}`);
  console.log(`features: ${[...c.features].sort().join(', ') || '(none requested were available)'}`);
  console.log('limits:');
  const names = [
    'maxStorageBufferBindingSize',
    'maxBufferSize',
    'maxComputeWorkgroupStorageSize',
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupsPerDimension',
    'maxStorageBuffersPerShaderStage',
    'maxUniformBufferBindingSize',
  ] as const;
  for (const n of names) console.log(`  ${n.padEnd(36)} ${c.limits[n].toLocaleString('en-US')}`);
  c.device.destroy();
} catch (e) {
  if (e instanceof NoAdapterError) {
    console.error(e.message);
    process.exit(1);
  }
  throw e;
}
