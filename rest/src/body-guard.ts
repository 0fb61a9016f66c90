import type { Request, RequestHandler, Response } from 'express';
import { apiError, ApiError } from './errors.ts';

/**
 * The largest body a route that takes none still accepts (and never reads): the lab's client sends
 * `GET /apiv1/queue` with the 4-byte JSON body `null`, and a few hundred bytes of anything else cost
 * nothing. Beyond it the request is refused before its body is read.
 */
export const NO_BODY_MAX_BYTES = 1024;

/**
 * After a refusal, how long the connection stays half-open (our side closed, theirs still sending)
 * before it is closed: time for the client to read the answer before the reset that closing a
 * socket with unread bytes sends. Go's net/http waits 500 ms for the same reason.
 */
export const CLOSE_DELAY_MS = 1000;

/**
 * Makes a refused request's connection end without its body being read: from now on at most the
 * stream's own buffer (16 KiB) is taken from the socket — Node would otherwise read off and drop the
 * whole body once the answer is sent, as fast as the client sends, in garbage the process holds
 * until collected — and once the answer is out the connection is half-closed (the client reads the
 * answer, then its end) and closed CLOSE_DELAY_MS later.
 */
export function closeWithoutReading(req: Request, res: Response): void {
  req.pause();
  // Marks the request as being consumed (IncomingMessage.read), so Node does not dump the body after the answer.
  req.read(0);
  res.once('finish', () => {
    if (req.complete) return;
    req.socket.end();
    setTimeout(() => req.socket.destroy(), CLOSE_DELAY_MS).unref();
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
    closeWithoutReading(req, res);
    return next(apiError('unsupported_encoding', `request bodies with Content-Encoding "${encoding.slice(0, 40).replace(/[^\x20-\x7e]/g, '?')}" are not accepted; send the body uncompressed`));
  }
  next();
};

const tooLarge = (): ApiError =>
  apiError('payload_too_large', `this route takes no request body; at most ${NO_BODY_MAX_BYTES} bytes are accepted (and ignored), and only POST /apiv1/separate takes an upload`);

/**
 * For every route that takes no body (mounted after those that do): a body over NO_BODY_MAX_BYTES
 * is refused 413 before it is read — at once from its Content-Length, or, for a chunked body,
 * after counting (not keeping) its first NO_BODY_MAX_BYTES + 1 bytes — and its connection closed
 * unread (closeWithoutReading). A smaller body is left unread; Node drops it once the answer is sent.
 */
export const refuseUnexpectedBodies: RequestHandler = (req, res, next) => {
  const length = req.headers['content-length'];
  if (length !== undefined) {
    if (Number(length) > NO_BODY_MAX_BYTES) {
      closeWithoutReading(req, res);
      return next(tooLarge());
    }
    return next();
  }
  if (req.headers['transfer-encoding'] === undefined || req.readableEnded) return next();
  // Chunked: its size shows only as it arrives (or sits in the stream's buffer). Count it, keep nothing, and route it once it has ended.
  let seen = 0;
  let settled = false;
  const settle = (err?: ApiError): void => {
    if (settled) return;
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('close', onClose);
    if (err) {
      closeWithoutReading(req, res);
      next(err);
    } else next();
  };
  const onData = (chunk: Buffer): void => {
    seen += chunk.length;
    if (seen > NO_BODY_MAX_BYTES) settle(tooLarge());
  };
  const onEnd = (): void => settle();
  const onClose = (): void => settle(apiError('aborted', 'request was aborted by the client'));
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('close', onClose);
};
