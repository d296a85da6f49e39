import { describe, expect, it } from 'vitest';
import { completeMultipartXml, parseError, parseListV2, parseResultEtag, parseUploadId } from '../../../src/storage/s3/xml.js';

const list = (contents: string, extra = '') =>
  Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <Name>b</Name>${extra}\n${contents}</ListBucketResult>`);
const obj = (key: string) => `  <Contents><Key>${key}</Key><LastModified>2026-12-04T21:23:28.544Z</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size></Contents>\n`;

describe('S3 XML', () => {
  it('keeps keys exactly: numbers, spaces, entities decoded once, control characters (as RGW encodes them)', () => {
    const keys = ['0012', ' x ', 'amp&amp;&lt;&gt;&quot;&apos;', 'ctl&#x01;x', 'cr&#x0d;x&#13;', 'lit&amp;#x01;', 'nl\nx', 'tab\tx', 'é ü + %?#~'];
    const page = parseListV2(list(keys.map(obj).join('')));
    expect(page.objects.map((o) => o.key)).toEqual(['0012', ' x ', 'amp&<>"\'', 'ctl\u0001x', 'cr\rx\r', 'lit&#x01;', 'nl\nx', 'tab\tx', 'é ü + %?#~']);
    expect(page.objects[0]).toEqual({ key: '0012', size: 12, etag: '"abc"', lastModified: new Date('2026-12-04T21:23:28.544Z') });
    expect(page.nextToken).toBeUndefined();
  });

  it('reads common prefixes, single entries as lists, and the continuation token only when truncated', () => {
    const one = parseListV2(list(obj('a') + '<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes>', '<IsTruncated>true</IsTruncated><NextContinuationToken>1/a+b=</NextContinuationToken>'));
    expect(one.objects.map((o) => o.key)).toEqual(['a']);
    expect(one.prefixes).toEqual(['p/']);
    expect(one.nextToken).toBe('1/a+b=');
    expect(parseListV2(list('', '<IsTruncated>false</IsTruncated><NextContinuationToken>x</NextContinuationToken>')).nextToken).toBeUndefined();
    expect(parseListV2(list('')).objects).toEqual([]);
  });

  it('reads pages shaped as RGW and AWS send them: owners, storage classes, fields in any order, empty elements', () => {
    const contents =
      '<Contents><Key>k&amp;1</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>"e-2"</ETag><Size>5</Size>' +
      '<StorageClass>STANDARD</StorageClass><Owner><ID>o</ID><DisplayName>Key &lt;Size&gt;</DisplayName></Owner><Type>Normal</Type></Contents>' +
      '<Contents><Size>0</Size><Key>empty</Key><ETag/><LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents>';
    const page = parseListV2(list(contents + '<CommonPrefixes><Prefix>a/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>b&#x20;/</Prefix></CommonPrefixes><IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken>', '<Prefix></Prefix><KeyCount>4</KeyCount>'));
    expect(page.objects).toEqual([
      { key: 'k&1', size: 5, etag: '"e-2"', lastModified: new Date('2026-01-02T03:04:05.000Z') },
      { key: 'empty', size: 0, etag: '', lastModified: new Date('2026-01-02T03:04:05.000Z') },
    ]);
    expect(page.prefixes).toEqual(['a/', 'b /']);
    expect(page.nextToken).toBe('t');
    expect(() => parseListV2(Buffer.from('<ListBucketResult><Contents><Key>cut'))).toThrow(/unterminated/);
    expect(() => parseListV2(Buffer.from('<Error><Code>x</Code></Error>'))).toThrow();
  });

  it('reads errors, upload ids and result ETags; writes the completion document', () => {
    expect(parseError(Buffer.from('<Error><Code>AuthorizationHeaderMalformed</Code><Message>m &amp; n</Message><Region>eu-west-1</Region></Error>'))).toEqual({
      code: 'AuthorizationHeaderMalformed',
      message: 'm & n',
      region: 'eu-west-1',
    });
    expect(parseError(Buffer.from('<CopyObjectResult><ETag>"e"</ETag></CopyObjectResult>'))).toBeUndefined();
    expect(parseError(Buffer.from('not xml <'))).toBeUndefined();
    expect(parseError(Buffer.alloc(0))).toBeUndefined();
    expect(parseUploadId(Buffer.from('<InitiateMultipartUploadResult><UploadId>2~x</UploadId></InitiateMultipartUploadResult>'))).toBe('2~x');
    expect(parseResultEtag(Buffer.from('<CompleteMultipartUploadResult><ETag>&quot;e-2&quot;</ETag></CompleteMultipartUploadResult>'))).toBe('"e-2"');
    expect(parseResultEtag(Buffer.from('<CompleteMultipartUploadResult><ETag></ETag></CompleteMultipartUploadResult>'))).toBe('');
    expect(completeMultipartXml([{ partNumber: 1, etag: '"a"' }])).toBe(
      '<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><PartNumber>1</PartNumber><ETag>&#34;a&#34;</ETag></Part></CompleteMultipartUpload>',
    );
  });
});
