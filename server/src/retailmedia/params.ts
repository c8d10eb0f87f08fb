import { ApiError, OAuthError } from '../domain/errors.js';
import { parseForm } from '../http/form.js';
import { EVENT_TYPES } from './catalogue.js';

/** The delivery API's parameters, validated. */
export interface DeliveryParams {
  partnerId: number;
  visitorId: string;
  customerId?: string;
  eventType: string;
  pageId: string;
  keywords?: string;
  category?: string;
  pageUid?: string;
  item?: string;
  environment?: string;
  pageNumber: number;
  listSize?: number;
}

export const MAX_VALUE_LENGTH = 1000;
const MAX_PARAMETERS = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

const missing = (name: string, why = 'is required') => new ApiError(400, 'validation', 'missing-parameter', 'Missing parameter', `${name} ${why}`);
const invalid = (name: string, why: string) => new ApiError(400, 'validation', 'invalid-parameter', 'Invalid parameter', `${name} ${why}`);

function parse(bytes: Buffer, where: string): Map<string, string> {
  try {
    return parseForm(bytes);
  } catch (err) {
    if (err instanceof OAuthError) {
      const repeated = /^parameter (".*") is repeated/.exec(err.description);
      if (repeated)
        throw new ApiError(
          400,
          'validation',
          'repeated-parameter',
          'Repeated parameter',
          `${JSON.parse(repeated[1] as string)} is given more than once; send each parameter once`,
        );
      throw invalid(`the ${where}`, `cannot be read: ${err.description}`);
    }
    throw err;
  }
}

/**
 * Merges the query string and a form-urlencoded body (curl's --data-urlencode without -G sends
 * the reference page's parameters as a GET body); a parameter given twice, in one or both, is an error.
 */
export function mergeParameters(rawQuery: string, body: Buffer | undefined): Map<string, string> {
  // Node hands the request target over as latin1 text: the bytes go back to the strict UTF-8 form parser.
  const params = parse(Buffer.from(rawQuery, 'latin1'), 'query string');
  if (body && body.length > 0) {
    for (const [name, value] of parse(body, 'request body')) {
      if (params.has(name)) {
        throw new ApiError(
          400,
          'validation',
          'repeated-parameter',
          'Repeated parameter',
          `${name} is given in both the query string and the body; send it once`,
        );
      }
      params.set(name, value);
    }
  }
  if (params.size > MAX_PARAMETERS) throw invalid('the request', `has more than ${MAX_PARAMETERS} parameters`);
  for (const [name, value] of params) {
    if (name.length > 100) throw invalid('a parameter name', 'is longer than 100 characters');
    if (value.length > MAX_VALUE_LENGTH) {
      throw new ApiError(400, 'validation', 'parameter-too-long', 'Parameter too long', `${name} must be at most ${MAX_VALUE_LENGTH} characters`);
    }
  }
  return params;
}

function text(params: Map<string, string>, name: string, max: number, required: boolean, why?: string): string | undefined {
  const value = params.get(name);
  if (value === undefined || value.trim() === '') {
    if (required) throw missing(name, why);
    if (value === undefined) return undefined;
    throw invalid(name, 'must not be empty');
  }
  if ([...value].length > max) throw new ApiError(400, 'validation', 'parameter-too-long', 'Parameter too long', `${name} must be at most ${max} characters`);
  if (CONTROL.test(value)) throw invalid(name, 'must not contain control characters');
  return value;
}

function integer(params: Map<string, string>, name: string, min: number, max: number): number | undefined {
  const value = params.get(name);
  if (value === undefined) return undefined;
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max) throw invalid(name, `must be a whole number from ${min} to ${max}`);
  return Number(value);
}

/** Validates the delivery API's parameters; every problem is a 400 naming the parameter. */
export function deliveryParams(params: Map<string, string>): DeliveryParams {
  const partner = params.get('criteo-partner-id');
  if (partner === undefined || partner === '') throw missing('criteo-partner-id');
  if (!/^[1-9]\d{0,15}$/.test(partner) || !Number.isSafeInteger(Number(partner))) throw invalid('criteo-partner-id', 'must be a positive integer');
  const visitorId = text(params, 'retailer-visitor-id', 100, true) as string;
  const customerId = text(params, 'customer-id', 100, false);
  const eventType = params.get('event-type');
  if (eventType === undefined || eventType === '') throw missing('event-type');
  if (!Object.hasOwn(EVENT_TYPES, eventType)) throw invalid('event-type', `must be one of ${Object.keys(EVENT_TYPES).join(', ')}`);
  const pageId = params.get('page-id');
  if (pageId === undefined || pageId === '') throw missing('page-id');
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(pageId)) throw invalid('page-id', 'must be 1 to 100 letters, digits, "_", "-" or ".", such as viewHome_API_desktop');
  const needed = EVENT_TYPES[eventType];
  const out: DeliveryParams = { partnerId: Number(partner), visitorId, eventType, pageId, pageNumber: integer(params, 'page-number', 1, 1000) ?? 1 };
  if (customerId !== undefined) out.customerId = customerId;
  const keywords = text(params, 'keywords', 500, needed === 'keywords', `is required when event-type is ${eventType}`);
  if (keywords !== undefined) out.keywords = keywords;
  const category = text(params, 'category', 500, needed === 'category', `is required when event-type is ${eventType}`);
  if (category !== undefined) out.category = category;
  const pageUid = text(params, 'page-uid', 100, needed === 'page-uid', `is required when event-type is ${eventType}`);
  if (pageUid !== undefined) out.pageUid = pageUid;
  const item = text(params, 'item', 100, needed === 'item', `is required when event-type is ${eventType}`);
  if (item !== undefined) out.item = item;
  const environment = params.get('environment');
  if (environment !== undefined) {
    if (!/^[A-Za-z]{1,20}$/.test(environment)) throw invalid('environment', 'must be 1 to 20 letters, such as d, m or t');
    out.environment = environment;
  }
  const listSize = integer(params, 'list-size', 1, 100);
  if (listSize !== undefined) out.listSize = listSize;
  return out;
}
