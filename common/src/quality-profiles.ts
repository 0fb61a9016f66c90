/**
 * What the engine's rewritten graph trades for speed (worker/src/separation/graph/optimize.ts).
 * 'exact' (the default): the weights' outputs within 1e-4. 'int8-transformer': the
 * cross-transformer's weight products in int8, faster and approximate — opt-in, its SDR against
 * 'exact' printed by `npm run bench:separate` (docs/separation.md › Quality profiles).
 */
export const QUALITY_PROFILES = ['exact', 'int8-transformer'] as const;
export type QualityProfile = (typeof QUALITY_PROFILES)[number];
export const DEFAULT_PROFILE: QualityProfile = 'exact';
export const isQualityProfile = (v: unknown): v is QualityProfile => (QUALITY_PROFILES as readonly unknown[]).includes(v);
