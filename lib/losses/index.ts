// Losses: forward functions returning a scalar Tensor (shape []) and backward functions returning
// {dLogits}, explicit like every op (no autograd).
export * from './multilabel';
