// The staff console in a real browser: Debian's Chromium driven by
// playwright-core. Signs in with a TOTP code computed here as an
// authenticator app would, finds the patient, reads her timeline, answers
// her email, waits for the harness (tests/console_browser.rs) to deliver
// her answer through /v1/email/inbound, then sees it in the thread. axe-core
// runs on every page (no serious or critical violation allowed); any console
// error (a CSP violation among them) fails the run.
//
// Input (environment): CONSOLE_URL, STAFF_EMAIL, STAFF_PASSWORD, TOTP_SECRET
// (base32), SERVER_NOW_MS (the server's clock when this started: the tests
// also run years ahead under libfaketime, which this process is not under),
// PATIENT_PHONE, PATIENT_NAME, SCREENSHOTS (optional directory).
// Protocol on stdout: "replied" after the reply is sent; the harness then
// writes one line to stdin; "ok" at the end.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import * as OTPAuth from 'otpauth';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => { const v = process.env[k]; assert.ok(v, `${k} is not set`); return v; };
const base = env('CONSOLE_URL');
const shots = process.env.SCREENSHOTS || '';
const errors = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP console.test 127.0.0.1'],
});
const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1100, height: 800 } });
const page = await context.newPage();
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
page.on('pageerror', (e) => errors.push(String(e)));

// axe-core is evaluated through the DevTools protocol, which the page's CSP
// does not govern: the CSP itself stays on and is tested.
async function check(name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa', 'best-practice'] }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(', ')})`), [], `${name}: accessibility`);
  if (shots) { await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); }
  assert.deepEqual(errors, [], `${name}: console errors`);
}

const serverNow = Number(env('SERVER_NOW_MS'));
const started = Date.now();
const nav = page.getByRole('navigation', { name: 'Main' });
const totp = new OTPAuth.TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: OTPAuth.Secret.fromBase32(env('TOTP_SECRET')) });

await page.goto(`${base}/login`);
await check('login');
await page.getByLabel('Email').fill(env('STAFF_EMAIL'));
await page.getByLabel('Password').fill(env('STAFF_PASSWORD'));
await page.getByLabel('Code from your authenticator app').fill(totp.generate({ timestamp: serverNow + (Date.now() - started) }));
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForURL(`${base}/`);
const cookies = await context.cookies();
assert.ok(cookies.some((c) => c.name === '__Host-tl_console' && c.httpOnly && c.secure && c.sameSite === 'Strict'), 'session cookie');
assert.equal(await page.evaluate(() => window.localStorage.length + window.sessionStorage.length), 0, 'nothing in web storage');
await check('home');

await nav.getByRole('link', { name: 'Find a patient' }).click();
await page.getByLabel('Search by').selectOption('phone');
await page.getByLabel('Search for').fill(env('PATIENT_PHONE'));
await page.getByRole('button', { name: 'Search' }).click();
await page.getByText(env('PATIENT_NAME')).waitFor();
assert.ok(!page.url().includes(env('PATIENT_PHONE').replace(/\D/g, '')), 'the phone number is not in the URL');
await check('search');

await page.locator('table a[href^="/patients/cus_"]').first().click();
await page.getByRole('heading', { name: /Patient cus_/ }).waitFor();
const patient = await page.content();
assert.ok(patient.includes(env('PATIENT_NAME')));
assert.ok(!patient.includes('knee'), 'clinical text on a front-desk page');
await check('patient');

await nav.getByRole('link', { name: 'Email review' }).click();
await check('queue');
await page.getByRole('link', { name: 'Open thread' }).first().click();
await page.getByText('Is there parking near the clinic?').waitFor();
await check('thread');
await page.getByLabel('Message').fill('Yes, there is parking behind the building.');
await page.getByRole('button', { name: 'Send reply' }).click();
await page.getByText('Your reply was sent').waitFor();
await check('replied');

console.log('replied');
const rl = createInterface({ input: process.stdin });
await new Promise((resolve) => rl.once('line', resolve));
rl.close();

await page.reload();
await page.getByText('behind the building').waitFor();
await nav.getByRole('link', { name: 'Email review' }).click();
await page.getByRole('link', { name: 'Open thread' }).first().click();
await page.getByText('Thank you, see you Tuesday!').waitFor();
await check('answered');

await page.getByRole('button', { name: 'Sign out' }).click();
await page.waitForURL(`${base}/login`);
assert.equal((await context.cookies()).filter((c) => c.name === '__Host-tl_console').length, 0, 'signed out');
await browser.close();
console.log('ok');
