// Sequential: children run in order; backward runs them in reverse. Children are named '0', '1', ...
// (PyTorch nn.Sequential's state-dict keys).
import { Tensor } from '../tensor';
import { argError } from '../errors';
import { Module } from './module';

export class Sequential extends Module {
  readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    layers.forEach((m, i) => {
      if (!(m instanceof Module)) throw argError('Sequential', `layers[${i}]`, 'a Module', m);
      this.registerModule(String(i), m);
    });
    this.layers = layers;
  }

  forward(xIn: Tensor): Tensor {
    let x = this.beginForward(xIn);
    for (const m of this.layers) {
      const y = m.forward(x);
      if (x !== xIn) x.dispose();
      x = y;
    }
    return x === xIn ? x.reshape(x.shape) : x;
  }

  backward(dyIn: Tensor): Tensor {
    let dy = this.beginBackward(dyIn, this.layers.length === 0 || this.layers.every((m) => m.training));
    for (let i = this.layers.length - 1; i >= 0; i--) {
      const dx = this.layers[i].backward(dy);
      if (dy !== dyIn) dy.dispose();
      dy = dx;
    }
    return dy === dyIn ? dy.reshape(dy.shape) : dy;
  }
}
