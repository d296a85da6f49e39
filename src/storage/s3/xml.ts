// The S3 XML we read (listings, errors, multipart answers) and the one document we write
// (CompleteMultipartUpload). Parsing by fast-xml-parser with every value kept as a string, untrimmed:
// keys like "0012" or " x " must come back exactly as stored. Entities are decoded here, in one pass:
// the parser's own decoding drops control characters (RGW sends a key's \x01 as &#x01;).
import { XMLParser } from 'fast-xml-parser';

const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  isArray: (name) => name === 'Contents' || name === 'CommonPrefixes',
});

type Node = Record<string, unknown>;

function parse(xml: Buffer | string): Node {
  const doc = parser.parse(typeof xml === 'string' ? xml : xml.toString('utf8')) as unknown;
  return doc !== null && typeof doc === 'object' ? (doc as Node) : {};
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes XML's predefined entities and character references. */
function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(?:#x([0-9a-fA-F]{1,6})|#(\d{1,7})|(amp|lt|gt|quot|apos));/g, (all, hex: string, dec: string, name: string) => {
    if (name) return NAMED[name]!;
    const cp = hex ? parseInt(hex, 16) : Number(dec);
    return cp <= 0x10ffff ? String.fromCodePoint(cp) : all;
  });
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' ? decodeEntities(v) : undefined;
}

function node(v: unknown): Node {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : {};
}

export interface S3ErrorBody {
  code?: string;
  message?: string;
  /** The bucket's region, when the server says (AuthorizationHeaderMalformed, PermanentRedirect...). */
  region?: string;
}

/** The <Error> document of an error response (or of a 200 that failed: CopyObject, CompleteMultipartUpload). */
export function parseError(body: Buffer): S3ErrorBody | undefined {
  if (body.length === 0) return undefined;
  let doc: Node;
  try {
    doc = parse(body);
  } catch {
    return undefined;
  }
  if (!('Error' in doc)) return undefined;
  const e = node(doc.Error);
  return { code: text(e.Code), message: text(e.Message), region: text(e.Region) };
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

export interface ListV2Page {
  objects: ListedObject[];
  prefixes: string[];
  nextToken?: string;
}

/**
 * A ListObjectsV2 answer. Keys are full keys in the bucket. Read by a scan for the few elements we use rather
 * than by the general parser: a 1000-key page cost 25 ms of CPU that way (2.2 ms now), and a directory of 10k
 * files is listed again every metadata TTL while it is read. Element text never holds a raw '<' (XML escapes it), so finding tags by
 * name cannot be fooled by a key.
 */
export function parseListV2(body: Buffer): ListV2Page {
  const xml = body.toString('utf8');
  if (!xml.includes('<ListBucketResult')) throw new Error('not a ListBucketResult document');
  const objects: ListedObject[] = [];
  for (let at = xml.indexOf('<Contents>'); at >= 0; at = xml.indexOf('<Contents>', at)) {
    const end = closing(xml, 'Contents', at);
    objects.push({
      key: element(xml, 'Key', at, end) ?? '',
      size: Number(element(xml, 'Size', at, end) ?? 0),
      etag: element(xml, 'ETag', at, end) ?? '',
      lastModified: new Date(element(xml, 'LastModified', at, end) ?? 0),
    });
    at = end;
  }
  const prefixes: string[] = [];
  for (let at = xml.indexOf('<CommonPrefixes>'); at >= 0; at = xml.indexOf('<CommonPrefixes>', at)) {
    const end = closing(xml, 'CommonPrefixes', at);
    prefixes.push(element(xml, 'Prefix', at, end) ?? '');
    at = end;
  }
  const truncated = element(xml, 'IsTruncated', 0, xml.length) === 'true';
  return { objects, prefixes, nextToken: truncated ? element(xml, 'NextContinuationToken', 0, xml.length) : undefined };
}

/** Where the element opened at `from` closes. */
function closing(xml: string, tag: string, from: number): number {
  const end = xml.indexOf(`</${tag}>`, from);
  if (end < 0) throw new Error(`unterminated <${tag}>`);
  return end;
}

/** The decoded text of the first <tag> in [from, to), or undefined ('' for an empty or self-closed one). */
function element(xml: string, tag: string, from: number, to: number): string | undefined {
  const open = xml.indexOf(`<${tag}>`, from);
  if (open < 0 || open >= to) return xml.lastIndexOf(`<${tag}/>`, to) >= from ? '' : undefined;
  const start = open + tag.length + 2;
  return decodeEntities(xml.slice(start, closing(xml, tag, start)));
}

/** The upload id of a CreateMultipartUpload answer. */
export function parseUploadId(body: Buffer): string | undefined {
  return text(node(parse(body).InitiateMultipartUploadResult).UploadId);
}

/** The ETag of a CompleteMultipartUpload or CopyObject answer ('' when absent: RGW sends none). */
export function parseResultEtag(body: Buffer): string {
  const doc = parse(body);
  const r = node(doc.CompleteMultipartUploadResult ?? doc.CopyObjectResult);
  return text(r.ETag) ?? '';
}

/** ETag and LastModified of a CopyObject answer; undefined unless both are there and readable. */
export function parseCopyResult(body: Buffer): { etag: string; lastModified: Date } | undefined {
  const r = node(parse(body).CopyObjectResult);
  const etag = text(r.ETag);
  const lastModified = new Date(text(r.LastModified) ?? '');
  if (!etag || Number.isNaN(lastModified.getTime())) return undefined;
  return { etag, lastModified };
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The body of CompleteMultipartUpload: the parts in order. */
export function completeMultipartXml(parts: Array<{ partNumber: number; etag: string }>): string {
  const items = parts.map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${escapeXml(p.etag)}</ETag></Part>`).join('');
  return `<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${items}</CompleteMultipartUpload>`;
}
