// Mlp (timm.layers.Mlp without dropout): fc1 → GELU → fc2; parameter names fc1.*, fc2.*.
import { bool } from '../errors';
import { Device, Tensor } from '../tensor';
import { GELU } from './activation';
import { Linear, moduleOptions, sizeArg } from './linear';
import { childSeed, Module } from './module';

export interface MlpOptions {
  /** output features (default: inFeatures) */
  outFeatures?: number;
  /** biases of fc1 and fc2 (default true) */
  bias?: boolean;
  device?: Device;
  seed?: number;
}

export class Mlp extends Module {
  readonly fc1: Linear;
  readonly act: GELU;
  readonly fc2: Linear;

  constructor(inFeatures: number, hiddenFeatures: number, opts?: MlpOptions) {
    super();
    const op = 'Mlp';
    sizeArg(op, 'inFeatures', inFeatures);
    sizeArg(op, 'hiddenFeatures', hiddenFeatures);
    const { o, device, seed } = moduleOptions(op, opts);
    const outFeatures = o.outFeatures === undefined ? inFeatures : sizeArg(op, 'options.outFeatures', o.outFeatures);
    const bias = bool(op, 'options.bias', o.bias, true);
    this.fc1 = this.registerModule('fc1', new Linear(inFeatures, hiddenFeatures, { bias, device, seed: childSeed(seed, 0) }));
    this.act = this.registerModule('act', new GELU());
    this.fc2 = this.registerModule('fc2', new Linear(hiddenFeatures, outFeatures, { bias, device, seed: childSeed(seed, 1) }));
  }

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    const h = this.fc1.forward(x);
    const a = this.act.forward(h);
    h.dispose();
    const y = this.fc2.forward(a);
    a.dispose();
    return y;
  }

  backward(dyIn: Tensor): Tensor {
    const dy = this.beginBackward(dyIn, this.fc2.cachedTensors() > 0);
    const da = this.fc2.backward(dy);
    const dh = this.act.backward(da);
    da.dispose();
    const dx = this.fc1.backward(dh);
    dh.dispose();
    return dx;
  }
}
