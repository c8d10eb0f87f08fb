import { execFile, execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Whether the real curl binary is here; in CI its absence is a failure, elsewhere a skipped test with a notice. */
export function curlAvailable(t: TestContext): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error('curl is required in CI');
    process.stdout.write("# curl is not installed: skipping the tests that run the reference page's curl commands as written\n");
    t.skip('curl is not installed');
    return false;
  }
}

/** Runs curl with the given arguments (as a shell would pass them) and returns the status and body. */
export function curl(args: string[]): Promise<{ status: number; text: string; body: any }> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-s', '-w', '\n%{http_code}', ...args], { timeout: 20_000 }, (err, stdout) => {
      if (err) return reject(err);
      const cut = stdout.lastIndexOf('\n');
      const text = stdout.slice(0, cut);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON
      }
      resolve({ status: Number(stdout.slice(cut + 1)), text, body });
    });
  });
}

/**
 * The reference page's delivery curl command, as written, with only the host and the token changed;
 * `headers` adds more `-H` lines (a shopper's address and browser).
 */
export function referenceDeliveryCurl(base: string, token: string, headers: string[] = []): string[] {
  const args = [
    '-X',
    'GET',
    `${base}/delivery/retailmedia`,
    '--data-urlencode',
    'criteo-partner-id=12345',
    '--data-urlencode',
    'retailer-visitor-id=123',
    '--data-urlencode',
    'customer-id=456',
    '--data-urlencode',
    'event-type=viewHome',
    '--data-urlencode',
    'page-id=viewHome_API_desktop',
    '-H',
    `Authorization: Bearer ${token}`,
    '-H',
    'Referer: www.criteo.com',
  ];
  for (const header of headers) args.push('-H', header);
  return args;
}

/** The reference page's token request as a curl command: client credentials in a form body. */
export function referenceTokenCurl(base: string, clientId: string, clientSecret: string): string[] {
  return [
    '-X',
    'POST',
    `${base}/oauth2/token`,
    '-H',
    'content-type: application/x-www-form-urlencoded',
    '--data-urlencode',
    'grant_type=client_credentials',
    '--data-urlencode',
    `client_id=${clientId}`,
    '--data-urlencode',
    `client_secret=${clientSecret}`,
  ];
}
