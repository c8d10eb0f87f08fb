import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FastifyBaseLogger } from 'fastify';
import type { ClientAddresses } from '../http/client-address.js';
import { type Lane, LaneRequest, writeClosing } from '../http/lanes.js';
import { levelEnabled, type RequestLog } from '../http/request-log.js';
import type { Metrics, TokenOutcome } from '../ops/metrics.js';
import { bodyTooLarge, failureAnswer, issuedAnswer, type OAuthAnswer, oauthErrorAnswer, TOKEN_BODY_LIMIT } from './answers.js';
import type { TokenEndpointOutcome, TokenRequest } from './token.js';

export interface TokenLaneOptions {
  /** POST /oauth2/token's steps (oauth/token.ts), the same function Fastify's route calls. */
  tokenEndpoint: (request: TokenRequest) => Promise<TokenEndpointOutcome>;
  clients: ClientAddresses;
  metrics: Metrics;
  requestLog: RequestLog;
}

const ROUTE = '/oauth2/token';
const QUESTION_MARK = 0x3f;

/**
 * POST /oauth2/token on the raw listener (http/lanes.ts): the body read with the endpoint's limit,
 * the endpoint's steps, the answer written in one go; its metrics and log line are those of the
 * Fastify route, which still answers the path's other spellings (oauth/routes.ts).
 */
export class TokenLane implements Lane {
  log: FastifyBaseLogger | undefined;
  closing = false;

  constructor(readonly options: TokenLaneOptions) {}

  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST') return false;
    const url = req.url as string;
    if (url !== ROUTE && !(url.startsWith(ROUTE) && url.charCodeAt(ROUTE.length) === QUESTION_MARK)) return false;
    if (this.closing) writeClosing(res);
    else new TokenCall(this, req, res).start();
    return true;
  }
}

const ignore = () => {};

/** One token request: its body as it arrives, and its outcome. */
class TokenCall extends LaneRequest {
  private body: Buffer | undefined = undefined;
  private chunks: Buffer[] | undefined = undefined;
  private size = 0;
  private outcome: TokenOutcome = 'other';
  private done = false;

  constructor(
    private readonly lane: TokenLane,
    raw: IncomingMessage,
    private readonly res: ServerResponse,
  ) {
    super(raw, lane.options.clients);
  }

  start(): void {
    const { raw, res } = this;
    res.on('close', () => this.closed());
    const declared = raw.headers['content-length'];
    if (declared !== undefined && Number(declared) > TOKEN_BODY_LIMIT) {
      this.tooLarge();
      return;
    }
    raw.on('data', (chunk: Buffer) => this.data(chunk));
    raw.on('end', () => void this.run());
    // A client that goes away mid-body: the response's 'close' counts it.
    raw.on('error', ignore);
  }

  private data(chunk: Buffer): void {
    if (this.done) return;
    this.size += chunk.length;
    if (this.size > TOKEN_BODY_LIMIT) this.tooLarge();
    else if (this.body === undefined) this.body = chunk;
    else if (this.chunks === undefined) this.chunks = [this.body, chunk];
    else this.chunks.push(chunk);
  }

  /** 413, and the connection closes after it: the rest of the body is not worth reading. */
  private tooLarge(): void {
    this.res.setHeader('connection', 'close');
    this.write(bodyTooLarge(this.raw.headers.authorization !== undefined));
  }

  private async run(): Promise<void> {
    if (this.done) return;
    const headers = this.raw.headers;
    let answer: OAuthAnswer;
    try {
      const outcome = await this.lane.options.tokenEndpoint({
        contentType: headers['content-type'],
        body: this.chunks === undefined ? this.body : Buffer.concat(this.chunks, this.size),
        authorization: headers.authorization,
        ip: this.ip,
      });
      answer = outcome.ok ? issuedAnswer(outcome.issued, headers['user-agent']) : oauthErrorAnswer(outcome.error, outcome.basic);
    } catch (err) {
      const failure = failureAnswer(err, headers.authorization !== undefined);
      (this.lane.log as FastifyBaseLogger)[failure.level]({ reqId: this.id, err }, failure.message);
      answer = failure.answer;
    }
    this.write(answer);
  }

  private write(answer: OAuthAnswer): void {
    this.done = true;
    const res = this.res;
    if (res.destroyed || res.headersSent) return;
    this.outcome = answer.outcome;
    answer.headers['content-length'] = String(Buffer.byteLength(answer.body));
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  /** The response closed: the request's metrics and log line, or, when the client left first, an abort. */
  private closed(): void {
    const { res } = this;
    const { metrics, requestLog } = this.lane.options;
    const log = this.lane.log as FastifyBaseLogger;
    if (!res.writableFinished) {
      metrics.clientAborted(ROUTE);
      if (levelEnabled(log, 'debug')) log.debug({ reqId: this.id }, 'the client closed the connection before its request was answered');
      return;
    }
    const elapsed = performance.now() - this.started;
    const status = res.statusCode;
    metrics.request('POST', ROUTE, status, elapsed / 1000);
    metrics.tokenRequest(this.outcome);
    requestLog.laneCompleted(log, this, status, elapsed);
  }
}
