// Functional ops: forward AND backward functions, one file per family.
export * from './elementwise';
