// LayerNorm over the last axis (PyTorch nn.LayerNorm(dim), elementwise affine): weight = 1, bias = 0.
import { argError, options } from '../errors';
import * as ops from '../ops';
import { Device, Tensor } from '../tensor';
import { constant } from './init';
import { moduleOptions, sizeArg } from './linear';
import { expectGradShape, Module, Parameter } from './module';

export interface LayerNormModuleOptions {
  /** default 1e-5 (PyTorch's default) */
  eps?: number;
  /** default 'cpu' */
  device?: Device;
}

export class LayerNorm extends Module {
  readonly dim: number;
  readonly eps: number;
  readonly weight: Parameter;
  readonly bias: Parameter;
  private x: Tensor | null = null;

  constructor(dim: number, opts?: LayerNormModuleOptions) {
    super();
    const op = 'LayerNorm';
    this.dim = sizeArg(op, 'dim', dim);
    const { o, device } = moduleOptions(op, options(op, opts));
    const eps = o.eps === undefined ? 1e-5 : o.eps;
    if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw argError(op, 'options.eps', 'a finite number >= 0', eps);
    this.eps = eps;
    this.weight = this.registerParameter('weight', constant([dim], 1, device));
    this.bias = this.registerParameter('bias', constant([dim], 0, device));
  }

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    const y = ops.layerNorm(x, this.weight.value, this.bias.value, { eps: this.eps });
    if (this.training) this.x = this.keep(x);
    return y;
  }

  backward(dyIn: Tensor): Tensor {
    const x = this.x;
    const dy = this.beginBackward(dyIn, x !== null);
    expectGradShape(`${this.opName}.backward`, dy, x!.shape);
    const g = ops.layerNormBackward(x!, this.weight.value, this.bias.value, dy, { eps: this.eps });
    this.weight.accumulate(g.dGamma);
    this.bias.accumulate(g.dBeta);
    return g.dX;
  }

  protected override clearCache(): void {
    super.clearCache();
    this.x = null;
  }
}
