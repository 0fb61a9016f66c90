import type { Request, RequestHandler, Response } from 'express';
import { ApiError } from './errors.ts';

/**
 * The largest body a route that takes none still accepts (and never reads): the lab's client sends
 * `GET /apiv1/queue` with the 4-byte JSON body `null`, and a few hundred bytes of anything else cost
 * nothing. Beyond it the request is refused before its body is read.
 */
export const NO_BODY_MAX_BYTES = 1024;

/**
 * After a refusal, how long the rest of a body that is still arriving is read off and dropped
 * (never kept) so the client, still sending, gets to read the answer; then the connection is cut.
 * nginx's lingering close, in short.
 */
export const LINGER_MS = 5000;

/**
 * Reads off and drops what is left of `req`'s body once its answer has gone out, for at most
 * LINGER_MS, then closes the connection. The connection stays usable when the body ends in time.
 */
function lingerAfter(req: Request, res: Response): void {
  res.once('finish', () => {
    if (req.complete || req.destroyed) return;
    const cut = setTimeout(() => req.socket.destroy(), LINGER_MS);
    cut.unref();
    const done = (): void => clearTimeout(cut);
    req.once('end', done);
    req.once('close', done);
    req.resume();
  });
}

/**
 * Compressed request bodies are refused (415) before anything reads them: inflating them would
 * let a few hundred bytes cost hundreds of megabytes before any size limit applies (a gzip or
 * brotli bomb). Audio does not compress anyway; the lab's clients send none.
 */
export const refuseEncodedBodies: RequestHandler = (req, res, next) => {
  const encoding = req.get('content-encoding')?.trim().toLowerCase();
  if (encoding && encoding !== 'identity') {
    lingerAfter(req, res);
    return next(new ApiError(415, 'unsupported_encoding', `request bodies with Content-Encoding "${encoding.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}" are not accepted; send the body uncompressed`));
  }
  next();
};

const tooLarge = (): ApiError =>
  new ApiError(413, 'payload_too_large', `this route takes no request body; at most ${NO_BODY_MAX_BYTES} bytes are accepted (and ignored), and only POST /apiv1/separate takes an upload`);

/**
 * For every route that takes no body (mounted after those that do): a body over NO_BODY_MAX_BYTES
 * is refused 413 before it is read — at once from its Content-Length, or, for a chunked body,
 * after counting (not keeping) its first NO_BODY_MAX_BYTES + 1 bytes. A smaller body is left
 * unread; Node drops it once the answer is sent.
 */
export const refuseUnexpectedBodies: RequestHandler = (req, res, next) => {
  const length = req.headers['content-length'];
  if (length !== undefined) {
    if (Number(length) > NO_BODY_MAX_BYTES) {
      lingerAfter(req, res);
      return next(tooLarge());
    }
    return next();
  }
  if (req.headers['transfer-encoding'] === undefined || req.complete) return next();
  // Chunked: its size shows only as it arrives. Count it, keep nothing, and route it once it has ended.
  let seen = 0;
  let settled = false;
  const settle = (err?: ApiError): void => {
    if (settled) return;
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
    if (err) {
      req.pause();
      lingerAfter(req, res);
      next(err);
    } else next();
  };
  const onData = (chunk: Buffer): void => {
    seen += chunk.length;
    if (seen > NO_BODY_MAX_BYTES) settle(tooLarge());
  };
  const onEnd = (): void => settle();
  const onClose = (): void => settle(new ApiError(400, 'aborted', 'request was aborted by the client'));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('close', onClose);
};
