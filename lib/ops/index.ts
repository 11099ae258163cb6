// Functional ops: forward AND backward functions, one file per family.
export * from './elementwise';
export * from './activation';
export * from './matmul';
export * from './softmax';
export * from './norm';
export * from './reduce';
export * from './shape';
export * from './pool';
export * from './outlook';
export * from './halo';
export * from './group_decoder';
export * from './kmeans';
