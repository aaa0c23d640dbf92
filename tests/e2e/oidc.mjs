// Sign-in through the clinic's identity provider, in Debian's Chromium: the
// console (console.test) and the provider (127.0.0.1) are different sites,
// so the SameSite rules act as in production. Nina's "doctors" group maps
// to clinician; she signs in, is shown as one, and signing out signs her
// out at the provider too. Mallory's group maps to nothing: refused.
// N5 of the second review: Eve, whose provider says her verified email is
// Nina's, does not become Nina; the provider identity "doc" whose email is
// a local account's is linked only after Doc signs in here once with his
// password and code, and a session the provider vouched for offers no
// emergency access while his password sign-in does.
//
// Input: CONSOLE_URL, DOC_EMAIL, DOC_PASSWORD, DOC_TOTP_SECRET, SERVER_NOW_MS,
// PATIENT (a patient not assigned to Doc); the provider's accounts are
// created by idp.mjs.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import * as OTPAuth from 'otpauth';

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

// Eve: another provider identity whose verified email is Nina's.
const eve = await browser.newContext({ ignoreHTTPSErrors: true });
const p3 = await eve.newPage();
await signInAt(p3, 'eve');
await p3.getByText('This account cannot sign in here').waitFor();
assert.equal((await eve.cookies()).filter((c) => c.name === '__Host-tl_console').length, 0, 'Eve is not Nina');

// Doc: a local account (password, TOTP, break-glass); his provider identity
// carries the same email.
const serverNow = Number(process.env.SERVER_NOW_MS);
const started = Date.now();
const totp = new OTPAuth.TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: OTPAuth.Secret.fromBase32(process.env.DOC_TOTP_SECRET) });
const doc = await browser.newContext({ ignoreHTTPSErrors: true });
const p4 = await doc.newPage();
await signInAt(p4, 'doc');
await p4.getByText('already exists').waitFor();
assert.equal((await doc.cookies()).filter((c) => c.name === '__Host-tl_console').length, 0, 'no session on the provider\'s word');
await axe(p4, 'link step-up');
await p4.getByLabel('Email').fill(process.env.DOC_EMAIL);
await p4.getByLabel('Password').fill(process.env.DOC_PASSWORD);
await p4.getByLabel('Code from your authenticator app').fill(totp.generate({ timestamp: serverNow + (Date.now() - started) }));
await p4.getByRole('button', { name: 'Sign in' }).click();
await p4.waitForURL(`${base}/`);
// Signed in here with his password: emergency access is offered.
let res = await p4.goto(`${base}/patients/${process.env.PATIENT}`);
assert.equal(res.status(), 403);
assert.ok((await p4.content()).includes('If this is an emergency'), 'a password sign-in may break glass');
await p4.context().clearCookies();
// Linked: the provider now signs him in, without emergency access.
await signInAt(p4, 'doc');
await p4.waitForURL(`${base}/`);
await p4.getByText('You are signed in as Clinician').waitFor();
res = await p4.goto(`${base}/patients/${process.env.PATIENT}`);
assert.equal(res.status(), 403);
assert.ok(!(await p4.content()).includes('If this is an emergency'), 'a provider session offers no emergency access');
await browser.close();
console.log('ok');
