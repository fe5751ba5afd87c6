// tests/browser/lib.mjs - what the browser tests share: a bounded run (log, check, cleanups,
// whole-run watchdog), timeouts, and launching Debian's chromium through playwright-core
// (never `npx playwright install`). e2e.mjs takes withTimeout and launchChromium from here;
// dashboard.mjs takes all of it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export function withTimeout(promise, ms, what) {
	let timer;
	return Promise.race([
		promise,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

// A bounded run: log() prefixes [tag seconds], check() counts, cleanups run last-first (each
// capped at 8 s), and past totalMs (or on SIGINT/SIGTERM) the run cleans up and exits 1.
// finish(err) cleans up, prints the verdict and exits.
export function createRun(tag, totalMs) {
	const t0 = Date.now();
	const cleanups = [];
	const counts = { failed: 0, passed: 0 };
	const log = (...a) => console.log(`[${tag} ${((Date.now() - t0) / 1000).toFixed(2)}s]`, ...a);
	const check = (cond, what, detail) => {
		counts[cond ? 'passed' : 'failed']++;
		log(cond ? 'ok  ' : 'FAIL', what, cond || detail === undefined ? '' :
			typeof detail === 'string' ? detail : JSON.stringify(detail));
		return cond;
	};
	const cleanup = async () => {
		while (cleanups.length) {
			const fn = cleanups.pop();
			try {
				await withTimeout(Promise.resolve().then(fn), 8000, 'cleanup step');
			} catch (e) {
				log('cleanup:', e.message);
			}
		}
	};
	const watchdog = setTimeout(async () => {
		log(`FAIL whole test exceeded ${totalMs} ms`);
		await cleanup();
		process.exit(1);
	}, totalMs);
	for (const sig of ['SIGINT', 'SIGTERM']) {
		process.on(sig, async () => {
			log(`FAIL interrupted by ${sig}`);
			await cleanup();
			process.exit(1);
		});
	}
	const finish = async (err, where) => {
		if (err) {
			counts.failed++;
			log('FAIL', err.stack || err.message);
		}
		await cleanup();
		clearTimeout(watchdog);
		if (counts.failed)
			log(`${counts.failed} failed, ${counts.passed} passed (logs and screenshots in ${where})`);
		else
			log(`all ${counts.passed} checks passed (screenshots in ${where})`);
		process.exit(counts.failed ? 1 : 0);
	};
	return { log, check, cleanups, cleanup, finish };
}

// Launches chromium headless in a fresh user-data-dir (a persistent context is how playwright
// takes a dir of our choosing); closing it and removing the dir are pushed onto cleanups.
// extraArgs: more command-line flags (wss.mjs trusts its test certificate with one).
export async function launchChromium({ cleanups, chromium = process.env.CHROMIUM || '/usr/bin/chromium',
	defaultTimeoutMs = 10000, viewport = { width: 1000, height: 720 }, extraArgs = [] }) {
	if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core')))
		throw new Error('playwright-core missing: run `npm ci` in tests/browser');
	if (!fs.existsSync(chromium))
		throw new Error(`${chromium} missing: apt-get install chromium`);
	const pw = await import('playwright-core');
	const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-chromium-'));
	cleanups.push(() => fs.rmSync(userDataDir, { recursive: true, force: true }));
	const context = await pw.chromium.launchPersistentContext(userDataDir, {
		executablePath: chromium,
		headless: true,
		timeout: 20000,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
			...extraArgs],
		viewport,
	});
	cleanups.push(() => context.close());
	context.setDefaultTimeout(defaultTimeoutMs);
	return context;
}
