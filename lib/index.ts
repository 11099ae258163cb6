// visattn public surface (re-exports only). See ARCHITECTURE.md "Public API contract".
export {
  Tensor, tensor, zeros, ones, full, randn, rand, scope, keep, memory, synchronize, synchronizeSync,
  pendingOps, isTensor, DEVICES, testing,
} from './tensor';
export type { Device, DType, CreateOptions, RandomOptions, MemoryInfo, DeviceMemory } from './tensor';
export { info } from './info';
export type { Info } from './info';
export * as ops from './ops';
export * as nn from './nn';
export * as losses from './losses';
