// tests/browser/wss.mjs - STOMP over secure WebSocket from a real browser (issue 14).
//
// Makes a test CA and a server certificate for 127.0.0.1 with the openssl command line,
// starts herald with its TLS listeners (--tls-cert/--tls-key, ports 0) and Debian's chromium
// (playwright-core) trusting that certificate through --ignore-certificate-errors-spki-list
// (the SHA-256 of the server key's SubjectPublicKeyInfo: no NSS database needed). Then:
//   1. herald's built-in page over https://127.0.0.1:<wss port>/ picks wss:// itself (a page
//      on https may only open wss://), connects, subscribes to its own queue, sees its message;
//   2. @stomp/stompjs (from npm) on that https page connects to wss://.../ws, subscribes to a
//      topic, and receives what a stomp.py client publishes over plain TCP;
//   3. no page or console errors; screenshots go to $E2E_OUT (default build/browser-wss).
// Bounded: every wait has a timeout, the run is capped at 55 s; only processes started here
// are signalled, by PID.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRun, launchChromium, withTimeout } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const HERALD_BIN = process.env.HERALD_BIN || path.join(REPO, 'build', 'core', 'herald');
const OUT = path.resolve(process.env.E2E_OUT || path.join(REPO, 'build', 'browser-wss'));
const PYTHON = process.env.PYTHON || '/usr/bin/python3';
const STOMPJS = path.join(HERE, 'node_modules', '@stomp', 'stompjs', 'bundles', 'stomp.umd.js');
const WAIT_MS = 10000;

const { log, check, cleanups, finish } = createRun('wss', 55000);

function openssl(cwd, ...args) {
	execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
}

// A CA, and a server certificate it signed for 127.0.0.1; returns paths and the SPKI pin.
function makeCerts() {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-wss-pki-'));
	cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
	const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
	openssl(dir, 'req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
		'-subj', '/CN=Herald wss test CA');
	openssl(dir, 'req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1',
		'-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost');
	openssl(dir, 'x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
		'-CAcreateserial', '-out', 'server.pem', '-days', '2', '-copy_extensions', 'copy');
	const cert = new crypto.X509Certificate(fs.readFileSync(path.join(dir, 'server.pem')));
	const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
	return {
		cert: path.join(dir, 'server.pem'),
		key: path.join(dir, 'server.key'),
		spki: crypto.createHash('sha256').update(spki).digest('base64'),
	};
}

async function startHerald(pki) {
	const logPath = path.join(OUT, 'herald.log');
	const logFd = fs.openSync(logPath, 'w');
	const args = ['--bind', '127.0.0.1', '--stomp-port', '0', '--ws-port', '0', '--tls-port', '0',
		'--wss-port', '0', '--gossip-port', '0', '--admin-port', '0', '--cluster', 'false',
		'--shards', process.env.HERALD_SHARDS || '2', '--tls-cert', pki.cert, '--tls-key', pki.key];
	const proc = spawn(HERALD_BIN, args, { stdio: ['ignore', logFd, logFd] });
	fs.closeSync(logFd);
	let exited = null;
	proc.on('exit', (code, sig) => { exited = { code, sig }; });
	cleanups.push(async () => {
		if (exited) return;
		proc.kill('SIGTERM');
		const done = once(proc, 'exit');
		const timer = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 5000);
		await done;
		clearTimeout(timer);
	});
	const ports = {};
	const deadline = Date.now() + WAIT_MS;
	while (!(ports.stomp && ports.wss)) {
		const text = fs.readFileSync(logPath, 'utf8');
		for (const m of text.matchAll(/listening proto=(\w+) addr=[0-9.]+:(\d+)/g))
			ports[m[1]] = Number(m[2]);
		if (exited) throw new Error(`herald exited (${JSON.stringify(exited)}):\n${text}`);
		if (Date.now() > deadline) throw new Error(`herald did not log its listeners:\n${text}`);
		await new Promise((r) => setTimeout(r, 20));
	}
	return { ports, alive: () => !exited };
}

function publish(port, dest, body) {
	const hex = Buffer.from(body).toString('hex');
	const out = execFileSync(PYTHON, [path.join(HERE, 'publish.py'), '127.0.0.1', String(port), dest,
		'text/plain', hex], { timeout: 20000, cwd: HERE });
	return out.toString().trim();
}

function watch(page, name, problems) {
	page.on('pageerror', (e) => problems.push(`${name}: ${e.message}`));
	page.on('console', (m) => {
		const url = m.location()?.url || '';
		if (m.type() === 'error' && !url.endsWith('/favicon.ico'))	/* the page has none */
			problems.push(`${name}: ${m.text()} (${url})`);
	});
}

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	if (!fs.existsSync(HERALD_BIN))
		throw new Error(`herald binary not found at ${HERALD_BIN} (set HERALD_BIN)`);
	const pki = makeCerts();
	const herald = await startHerald(pki);
	log('herald ports', JSON.stringify(herald.ports));
	const context = await launchChromium({
		cleanups, extraArgs: [`--ignore-certificate-errors-spki-list=${pki.spki}`] });
	const problems = [];
	const nonce = crypto.randomBytes(4).toString('hex');
	const origin = `https://127.0.0.1:${herald.ports.wss}`;

	// 1. the built-in page over https picks wss:// for itself
	const builtin = await context.newPage();
	watch(builtin, 'built-in', problems);
	const resp = await builtin.goto(`${origin}/`, { timeout: WAIT_MS });
	check(resp && resp.status() === 200, `built-in page served over https at ${origin}/`,
		resp && resp.status());
	const own = `wss-${nonce}`;
	await builtin.fill('#user', 'guest');
	await builtin.fill('#pass', 'guest');
	await builtin.fill('#vhost', '/');
	await builtin.fill('#name', own);
	await builtin.click('#connect');
	const subscribed = await builtin.waitForFunction(
		(q) => document.querySelector('#log').textContent.includes('subscribed to ' + q),
		`/queue/${own}`, { timeout: WAIT_MS }).then(() => true, () => false);
	check(subscribed, 'built-in page connects over wss:// and subscribes',
		subscribed ? undefined : await builtin.evaluate(() => document.body.innerText));
	const text = `over wss ${nonce}`;
	await builtin.fill('#to', `/queue/${own}`);
	await builtin.fill('#text', text);
	await builtin.click('#send');
	const shown = await builtin.waitForFunction((t) => document.querySelector('#log').textContent.includes(t),
		text, { timeout: WAIT_MS }).then(() => true, () => false);
	check(shown, "its message comes back in the built-in page's #log");
	await builtin.screenshot({ path: path.join(OUT, 'builtin-wss.png'), fullPage: true });

	// 2. @stomp/stompjs on the https page, over wss://, fed by stomp.py over TCP
	const page = await context.newPage();
	watch(page, 'stompjs', problems);
	await page.goto(`${origin}/`, { timeout: WAIT_MS });
	await page.addScriptTag({ path: STOMPJS });
	const topic = `/topic/wss-${nonce}`;
	const ready = await page.evaluate(({ url, topic }) => new Promise((resolve) => {
		window.got = [];
		const client = new StompJs.Client({
			brokerURL: url, connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
			reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0,
		});
		client.onConnect = () => {
			client.subscribe(topic, (m) => window.got.push(m.body), { receipt: 'sub-1' });
			client.watchForReceipt('sub-1', () => resolve('subscribed'));
		};
		client.onStompError = (f) => resolve('ERROR ' + f.headers.message);
		client.onWebSocketClose = (e) => resolve('closed ' + e.code);
		client.activate();
		window.stompClient = client;
	}), { url: `wss://127.0.0.1:${herald.ports.wss}/ws`, topic });
	check(ready === 'subscribed', 'stompjs connects to wss:// and subscribes', ready);
	const body = `from stomp.py ${nonce}`;
	check(publish(herald.ports.stomp, topic, body) === 'ok 1', 'stomp.py publishes over TCP');
	const got = await page.waitForFunction((b) => window.got.includes(b), body, { timeout: WAIT_MS })
		.then(() => true, () => false);
	check(got, 'the message reaches stompjs over wss://',
		got ? undefined : await page.evaluate(() => window.got));
	await page.evaluate(() => window.stompClient.deactivate());
	check(problems.length === 0, 'no page or console errors', problems);
	check(herald.alive(), 'herald still running');
}

main().then(() => finish(null, OUT), (err) => finish(err, OUT));
