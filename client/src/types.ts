/**
 * The API's wire types, inferred from the zod schemas the server's OpenAPI document is generated
 * from (common/src/contract.ts, ingest-contract.ts): type-only imports, erased at run time, so the
 * client carries no dependency. A field the server adds or changes changes these types with it.
 */
import type { z } from 'zod';
import type {
  CallbackRequestSchema, DeleteSongResponseSchema, ErrorBodySchema, HealthResponseSchema, InfoResponseSchema, JobViewSchema, LibraryResponseSchema,
  LibrarySongSchema, QueueResponseSchema, ReadyResponseSchema, RemoveStemResponseSchema, SubmitResponseSchema,
  ErrorCodeSchema, JobStateSchema, OutputFormatSchema, StemSchema, TrackSchema,
} from '@msaas/common';

export type Job = z.infer<typeof JobViewSchema>;
/** The name the common package used for it. */
export type JobView = Job;
export type SubmitResponse = z.infer<typeof SubmitResponseSchema>;
export type QueueResponse = z.infer<typeof QueueResponseSchema>;
export type InfoResponse = z.infer<typeof InfoResponseSchema>;
export type RemoveStemResponse = z.infer<typeof RemoveStemResponseSchema>;
export type DeleteSongResponse = z.infer<typeof DeleteSongResponseSchema>;
export type LibrarySong = z.infer<typeof LibrarySongSchema>;
export type LibraryResponse = z.infer<typeof LibraryResponseSchema>;
export type HealthResponse = z.infer<typeof HealthResponseSchema>;
export type ReadyResponse = z.infer<typeof ReadyResponseSchema>;
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;
export type Callback = z.infer<typeof CallbackRequestSchema>;
export type JobState = z.infer<typeof JobStateSchema>;
export type OutputFormat = z.infer<typeof OutputFormatSchema>;
export type Stem = z.infer<typeof StemSchema>;
export type Track = z.infer<typeof TrackSchema>;
export type ModelName = InfoResponse['model'];
