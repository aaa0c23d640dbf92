// The compliance officer's console in Debian's Chromium: the integrity
// badge and an uploaded copy with an altered record shown broken, a search
// whose export is downloaded (the harness verifies it offline), the report
// of who accessed the patient, and an erasure entered by the officer and
// approved by a second person. axe-core on every page.
//
// Input: CONSOLE_URL, STAFF_PASSWORD, SERVER_NOW_MS, CORA_EMAIL, CORA_KEY,
// AMY_EMAIL, AMY_KEY, ALTERED_EXPORT, DOWNLOAD_TO, CLINICIAN_EMAIL, PATIENT_ID.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import * as OTPAuth from 'otpauth';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const env = (k) => { const v = process.env[k]; assert.ok(v, `${k} is not set`); return v; };
const base = env('CONSOLE_URL');
const serverNow = Number(env('SERVER_NOW_MS'));
const started = Date.now();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP console.test 127.0.0.1'],
});

async function check(page, name) {
  await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21aa', 'wcag22aa', 'best-practice'] }));
  const bad = r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad.map((v) => `${v.id}: ${v.nodes.map((n) => n.target).join(', ')}`), [], `${name}: accessibility`);
  if (process.env.SCREENSHOTS) { await page.screenshot({ path: `${process.env.SCREENSHOTS}/${name.replaceAll(' ', '-')}.png`, fullPage: true }); }
}

async function signIn(email, key) {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  const totp = new OTPAuth.TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: OTPAuth.Secret.fromBase32(key) });
  await page.goto(`${base}/login`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(env('STAFF_PASSWORD'));
  await page.getByLabel('Code from your authenticator app').fill(totp.generate({ timestamp: serverNow + (Date.now() - started) }));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/`);
  return { page, errors, nav: page.getByRole('navigation', { name: 'Main' }) };
}

const cora = await signIn(env('CORA_EMAIL'), env('CORA_KEY'));
await cora.nav.getByRole('link', { name: 'Audit trail' }).click();
await cora.page.getByRole('heading', { name: /^Integrity:/ }).waitFor();
await check(cora.page, 'audit');

// A copy of the trail with one record altered: shown broken.
await cora.page.setInputFiles('#file', env('ALTERED_EXPORT'));
await cora.page.getByRole('button', { name: 'Verify against the signed checkpoint' }).click();
await cora.page.getByText('Uploaded export: does not verify').waitFor();
await check(cora.page, 'audit verify broken');

// Search by patient and action, then export what was found.
await cora.page.getByLabel('Patient (cus_… id, phone or email)').fill(env('PATIENT_ID'));
await cora.page.getByLabel('Action (or its start, e.g. staff. or patient.view)').fill('patient.view');
await cora.page.getByRole('button', { name: 'Search', exact: true }).click();
await cora.page.locator('table').getByText(env('CLINICIAN_EMAIL')).first().waitFor();
await check(cora.page, 'audit search');
const [download] = await Promise.all([
  cora.page.waitForEvent('download'),
  cora.page.getByRole('button', { name: 'Export these (verifies offline)' }).click(),
]);
await download.saveAs(env('DOWNLOAD_TO'));

// Who accessed the patient.
await cora.page.goto(`${base}/audit/patients/${env('PATIENT_ID')}`);
await cora.page.getByRole('heading', { name: /Who accessed patient/ }).waitFor();
await cora.page.locator('table').getByText(env('CLINICIAN_EMAIL')).first().waitFor();
await check(cora.page, 'access report');

// An erasure request by phone, entered by the officer…
await cora.nav.getByRole('link', { name: "Patients' requests" }).click();
await cora.page.getByLabel('Patient (cus_… id, phone or email)').fill(env('PATIENT_ID'));
await cora.page.getByLabel('Request', { exact: true }).selectOption('erasure');
await cora.page.getByLabel("How the patient's identity was checked").fill('Letter with a copy of her ID, checked against the record.');
await cora.page.getByRole('button', { name: 'Enter the request' }).click();
await cora.page.getByText('erasure (staff)').waitFor();
assert.equal(await cora.page.getByRole('button', { name: 'Approve and erase' }).count(), 0, 'the officer may not approve her own');
await check(cora.page, 'requests');

// …approved by a second person.
const amy = await signIn(env('AMY_EMAIL'), env('AMY_KEY'));
await amy.nav.getByRole('link', { name: "Patients' requests" }).click();
await amy.page.getByRole('button', { name: 'Approve and erase' }).click();
await amy.page.getByText('the patient was erased and the receipt recorded').waitFor();
await check(amy.page, 'requests approved');
assert.deepEqual([...cora.errors, ...amy.errors], [], 'console errors');
await browser.close();
console.log('ok');
