// An AWS SDK client for the same bucket, for the rare control operations the ObjectStore interface lacks
// (bucket creation in benchmarks and tests). Loaded on first use only: the SDK is ~0.4 s to import, and
// nothing on the data path needs it.
import type { S3Client as SdkS3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { createRequire } from 'node:module';

export interface SdkClientOptions {
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  credentials: { kind: 'static'; accessKeyId: string; secretAccessKey: string; sessionToken?: string } | { kind: 'default' } | { kind: 'anonymous' };
}

export function sdkClient(opts: SdkClientOptions): SdkS3Client {
  const require = createRequire(import.meta.url);
  const { S3Client } = require('@aws-sdk/client-s3') as typeof import('@aws-sdk/client-s3');
  const config: S3ClientConfig = {
    region: opts.region,
    endpoint: opts.endpoint,
    forcePathStyle: opts.forcePathStyle,
    // S3-compatible stores (RGW 16, Spaces) reject or mangle aws-chunked bodies with trailing checksums.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
  const creds = opts.credentials;
  if (creds.kind === 'static') {
    config.credentials = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: creds.sessionToken };
  } else if (creds.kind === 'anonymous') {
    const { NoAuthSigner } = require('@smithy/core') as typeof import('@smithy/core');
    config.httpAuthSchemeProvider = () => [{ schemeId: 'smithy.api#noAuth' }];
    config.httpAuthSchemes = [{ schemeId: 'smithy.api#noAuth', identityProvider: () => async () => ({}), signer: new NoAuthSigner() }];
  }
  return new S3Client(config);
}
