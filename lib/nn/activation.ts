// Activation modules (no parameters): GELU (erf form, PyTorch nn.GELU()), ReLU.
import * as ops from '../ops';
import { Tensor } from '../tensor';
import { expectGradShape, Module } from './module';

abstract class Activation extends Module {
  private x: Tensor | null = null;
  protected abstract f(x: Tensor): Tensor;
  protected abstract df(x: Tensor, dy: Tensor): Tensor;

  forward(xIn: Tensor): Tensor {
    const x = this.beginForward(xIn);
    const y = this.f(x);
    if (this.training) this.x = this.keep(x);
    return y;
  }

  backward(dyIn: Tensor): Tensor {
    const x = this.x;
    const dy = this.beginBackward(dyIn, x !== null);
    expectGradShape(`${this.opName}.backward`, dy, x!.shape);
    return this.df(x!, dy);
  }

  protected override clearCache(): void {
    super.clearCache();
    this.x = null;
  }
}

/** 0.5·x·(1 + erf(x/√2)) */
export class GELU extends Activation {
  protected f(x: Tensor): Tensor {
    return ops.gelu(x);
  }
  protected df(x: Tensor, dy: Tensor): Tensor {
    return ops.geluBackward(x, dy).dX;
  }
}

/** max(x, 0) */
export class ReLU extends Activation {
  protected f(x: Tensor): Tensor {
    return ops.relu(x);
  }
  protected df(x: Tensor, dy: Tensor): Tensor {
    return ops.reluBackward(x, dy).dX;
  }
}
