// The k-means half of a kMaX-DeepLab transformer layer (spec §4.3 steps 3–4, §4.4):
//   F̂ = l2Normalize(pixelFeatures) (per pixel over channels; optional)
//   {update, assign, logits} = kmeansCrossAttention(F̂, centers, values)
// update[b,l,:] = the SUM of the values of the pixels whose arg-max center is l; logits = F̂·centersᵀ
// ([B,L,N], the mask logits before the predictor's 1-channel BatchNorm, for the deep-supervision losses).
// Backward: dValues = the gather of dUpdate by the assignment (no gradient through the arg-max, as the
// reference); when the losses give dLogits, they flow to the pixel features (through the
// normalisation) and to the centers: dF̂ = dLogitsᵀ·centers, dCenters = dLogits·F̂.
// forward(x) is not defined for this three-input module: use update(...) and updateBackward(...).
import { argError, bool, finiteNumber, options } from '../errors';
import * as ops from '../ops';
import { Tensor } from '../tensor';
import { Module, withTemporaries } from './module';

export interface KMeansClusterUpdateOptions {
  /** L2-normalise the pixel features before the assignment (default true, as kMaX's predictor) */
  normalizePixels?: boolean;
  /** eps of the normalisation (default 1e-12) */
  eps?: number;
  /** return (and keep for backward) the logits (default true: training needs them) */
  returnLogits?: boolean;
}

export interface KMeansClusterUpdateResult {
  update: Tensor;
  assign: Tensor;
  logits?: Tensor;
}

export class KMeansClusterUpdate extends Module {
  readonly normalizePixels: boolean;
  readonly eps: number;
  readonly returnLogits: boolean;
  private saved: { pixels: Tensor; normed: Tensor; centers: Tensor; assign: Tensor; N: number } | null = null;

  constructor(opts?: KMeansClusterUpdateOptions) {
    super();
    const op = 'KMeansClusterUpdate';
    const o = options(op, opts);
    this.normalizePixels = bool(op, 'options.normalizePixels', o.normalizePixels, true);
    this.eps = finiteNumber(op, 'options.eps', o.eps, 1e-12);
    if (!(this.eps > 0)) throw argError(op, 'options.eps', 'a number > 0', o.eps);
    this.returnLogits = bool(op, 'options.returnLogits', o.returnLogits, true);
  }

  forward(): Tensor {
    throw new Error('KMeansClusterUpdate.forward: use update(pixelFeatures, centers, values)');
  }

  backward(): Tensor {
    throw new Error('KMeansClusterUpdate.backward: use updateBackward(dUpdate, dLogits?)');
  }

  /** pixelFeatures [B,N,D], centers [B,L,D], values [B,N,Dv] → {update [B,L,Dv], assign int32 [B,N], logits? [B,L,N]} */
  update(pixelFeatures: Tensor, centers: Tensor, values: Tensor): KMeansClusterUpdateResult {
    this.beginForward(pixelFeatures);
    this.saved = null;
    return withTemporaries((t) => {
      const normed = this.normalizePixels ? t(ops.l2Normalize(pixelFeatures, { eps: this.eps })) : pixelFeatures;
      const r = ops.kmeansCrossAttention(normed, centers, values, { returnLogits: this.returnLogits });
      if (this.training) {
        this.saved = {
          pixels: this.keep(pixelFeatures), normed: this.keep(normed), centers: this.keep(centers), assign: this.keep(r.assign),
          N: pixelFeatures.shape[1],
        };
      }
      return r;
    });
  }

  /**
   * dUpdate [B,L,Dv] (and dLogits [B,L,N] when the losses read the logits) →
   * {dValues [B,N,Dv], dPixelFeatures?, dCenters?} (the last two only with dLogits).
   */
  updateBackward(dUpdate: Tensor, dLogits?: Tensor | null): { dValues: Tensor; dPixelFeatures?: Tensor; dCenters?: Tensor } {
    const op = `${this.opName}.updateBackward`;
    const s = this.saved;
    this.beginBackward(dUpdate, s !== null);
    const dValues = ops.kmeansCrossAttentionBackward(s!.assign, dUpdate, { numPixels: s!.N });
    if (dLogits === undefined || dLogits === null) return { dValues };
    try {
      const [B, N] = s!.pixels.shape;
      const L = s!.centers.shape[1];
      if (!(dLogits instanceof Tensor)) throw argError(op, 'dLogits', 'a float32 Tensor', dLogits);
      if (dLogits.rank !== 3 || dLogits.shape[0] !== B || dLogits.shape[1] !== L || dLogits.shape[2] !== N) {
        throw argError(op, 'dLogits', `shape [${B}, ${L}, ${N}] (the shape of the logits)`, dLogits);
      }
      return withTemporaries((t) => {
        // logits = F̂·centersᵀ: dF̂ = dLogitsᵀ·centers, dCenters = dLogits·F̂ (no transposed copies)
        const dNormed = t(ops.matmul(dLogits, s!.centers, { transposeA: true }));
        const dCenters = ops.matmul(dLogits, s!.normed);
        const dPixelFeatures = this.normalizePixels
          ? ops.l2NormalizeBackward(s!.pixels, dNormed, { eps: this.eps }).dX
          : dNormed.reshape(dNormed.shape);
        return { dValues, dPixelFeatures, dCenters };
      });
    } catch (e) {
      dValues.dispose();
      throw e;
    }
  }

  protected override clearCache(): void {
    super.clearCache();
    this.saved = null;
  }
}
