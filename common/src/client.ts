/**
 * The API client lives in its own package (client/, `@msaas/client`); re-exported here for the code
 * that imported it from common. Its wire types are common's own (api.ts, job.ts), checked equal to
 * the contract's (contract.ts).
 */
export {
  ApiClient, ApiError, isTerminal, stemPath, toBase64,
  type CallOptions, type ClientOptions, type Download, type FollowOptions, type RemoveStemOptions, type StemOptions, type SubmitOptions, type UploadOptions,
} from '@msaas/client';
