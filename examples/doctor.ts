// `npm run doctor`: what WebGPU adapter the engine runs on, its features and limits.
import { describeAdapter, init, NoAdapterError } from '../src/index.ts';

try {
  const c = await init();
  console.log(`adapter:  ${describeAdapter(c)}`);
  // Dawn's Node bindings do not report the backend; each platform's build of npm `webgpu` has one.
  const reported = (c.adapterInfo as unknown as { backendType?: string }).backendType;
  const byPlatform: Record<string, string> = { linux: 'Vulkan', darwin: 'Metal', win32: 'D3D12' };
  console.log(`backend:  ${reported ?? `${byPlatform[process.platform] ?? 'unknown'} (Dawn's backend on ${process.platform}; not reported by the adapter)`}`);
  const info = c.adapterInfo as unknown as { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number };
  console.log(`kind:     ${c.isCpu ? 'CPU (software rasteriser: correct, slow)' : 'GPU'}${info.isFallbackAdapter ? ', fallback adapter' : ''}`);
  if (info.subgroupMinSize) console.log(`subgroup: ${info.subgroupMinSize}–${info.subgroupMaxSize} lanes`);
  console.log(`features: ${[...c.adapter.features].sort().join(', ') || '(none)'}`);
  console.log(`  used by the engine: ${[...c.features].sort().join(', ') || '(none of shader-f16, subgroups, timestamp-query)'}`);
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
