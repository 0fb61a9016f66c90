// The offline pass list: HTDemucs ONNX bytes in, an equivalent graph that runs faster on ORT's CPU
// provider out. Pure (bytes → bytes); caching and validation live in optimized-model.ts.
import { createHash } from 'node:crypto';
import { decodeModel, encodeModel, graphOf, opsetVersion, pruneDead, GraphIndex, type NodeProto } from './onnx-graph.ts';
import { rewriteConvTranspose } from './rewrite-convtranspose.ts';
import { rewriteGroupNorm } from './rewrite-groupnorm.ts';
import { quantizeMatMuls } from './rewrite-int8-matmul.ts';
import { DEFAULT_PROFILE, type QualityProfile } from '@msaas/common';

/**
 * Bump whenever a pass changes what it writes: the cache key includes it, so graphs produced by an
 * older pass list are rebuilt rather than reused.
 */
export const PASS_VERSION = 'ct-polyphase.1+gn-layernorm-freq.1';

/** Bump when the int8 pass changes what it writes (part of that profile's cache key). */
export const INT8_PASS_VERSION = 'int8-dqmm-7bit-percol.1';

/** HTDemucs' cross-transformer: its MatMul/Gemm with constant weights are what 'int8-transformer' quantizes. */
export const CROSS_TRANSFORMER = (n: NodeProto): boolean => (n.name ?? '').startsWith('/crosstransformer/');

/**
 * HTDemucs' frequency-branch DConv norms ([B·F, C, T = 336]: γ/β materialised as C×336 floats).
 * The time branch's norms span C × up to 86k samples: materialising costs tens of MB each, and
 * LayerNormalization over that many values drifted 4.4e-3 from InstanceNormalization.
 */
export const FREQ_BRANCH_DCONV = (n: NodeProto): boolean => /^\/(encoder|decoder)\.\d+\/dconv\//.test(n.name ?? '');

/** The pass list's version for a profile ('exact' keeps the cache key it had before profiles existed). */
const passesOf = (profile: QualityProfile): string => (profile === 'exact' ? PASS_VERSION : `${PASS_VERSION}+${profile}:${INT8_PASS_VERSION}`);

export interface PassReport {
  pass: string;
  rewritten: number;
  detail?: string;
}

export function optimizeGraph(source: Uint8Array, profile: QualityProfile = DEFAULT_PROFILE): { bytes: Uint8Array; report: PassReport[] } {
  const model = decodeModel(source);
  if (opsetVersion(model) < 17) throw new Error(`graph rewrites need ONNX opset ≥ 17 (LayerNormalization, Shape start); found ${opsetVersion(model)}`);
  const graph = graphOf(model);
  const index = new GraphIndex(graph);
  const report: PassReport[] = [];
  report.push({ pass: 'convtranspose-polyphase', rewritten: rewriteConvTranspose(index) });
  const gn = rewriteGroupNorm(index, { where: FREQ_BRANCH_DCONV, foldLayerScale: true });
  report.push({ pass: 'groupnorm-layernorm', rewritten: gn.norms, detail: `${gn.layerScales} LayerScale Mul folded` });
  if (profile === 'int8-transformer') report.push({ pass: 'int8-transformer-matmul', rewritten: quantizeMatMuls(model, index, CROSS_TRANSFORMER) });
  pruneDead(graph);
  model.producerName = `${model.producerName ?? ''} + msaas graph rewrites ${passesOf(profile)}`;
  return { bytes: encodeModel(model), report };
}

/** sha-256 of the source graph's bytes (hex). */
export const sourceDigest = (source: Uint8Array): string => createHash('sha256').update(source).digest('hex');

/** Cache key from the source graph's sha-256, the profile and its pass list's version. */
export const optimizedGraphKeyOf = (sourceSha: string, profile: QualityProfile = DEFAULT_PROFILE): string =>
  createHash('sha256').update(`${sourceSha}\n${passesOf(profile)}`).digest('hex').slice(0, 16);
