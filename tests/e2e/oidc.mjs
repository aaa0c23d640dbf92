// Sign-in through the clinic's identity provider, in Debian's Chromium: the
// console (console.test) and the provider (127.0.0.1) are different sites,
// so the SameSite rules act as in production. Nina's "doctors" group maps
// to clinician; she signs in, is shown as one, and signing out signs her
// out at the provider too. Mallory's group maps to nothing: refused.
//
// Input: CONSOLE_URL; the provider's accounts are created by idp.mjs.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const base = process.env.CONSOLE_URL;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP console.test 127.0.0.1'],
});

async function axe(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => v.id), [], `${name}: accessibility`);
}

async function signInAt(page, login) {
  await page.goto(`${base}/login`);
  await page.getByRole('link', { name: 'Sign in with Sunrise SSO' }).click();
  // node-oidc-provider's development login and consent screens.
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await page.locator('button[type="submit"]').click();
  await page.locator('button[type="submit"]', { hasText: /continue/i }).click();
}

const nina = await browser.newContext({ ignoreHTTPSErrors: true });
const page = await nina.newPage();
await page.goto(`${base}/login`);
await axe(page, 'login with a provider');
await signInAt(page, 'nina');
await page.waitForURL(`${base}/`);
await page.getByText('You are signed in as Clinician').waitFor();
await axe(page, 'home after provider sign-in');
const cookies = await nina.cookies();
assert.ok(cookies.some((c) => c.name === '__Host-tl_console' && c.sameSite === 'Strict'), 'the Strict session cookie was set and kept');
await page.getByRole('button', { name: 'Sign out' }).click();
// RP-initiated logout: the provider asks to confirm, then sends us back.
await page.waitForURL(/^http:\/\/127\.0\.0\.1:/);
await page.getByRole('button', { name: /sign me out/i }).click();
await page.waitForURL(`${base}/login`);

const mallory = await browser.newContext({ ignoreHTTPSErrors: true });
const p2 = await mallory.newPage();
await signInAt(p2, 'mallory');
await p2.getByText('Your clinic account has no Throughline role').waitFor();
assert.equal((await mallory.cookies()).filter((c) => c.name === '__Host-tl_console').length, 0, 'no session for an unmapped user');
await browser.close();
console.log('ok');
