// tests/browser/e2e.mjs - the real-browser end-to-end test of issue 4.
//
// Debian's chromium, driven by playwright-core (never `npx playwright install`), loads
// page.html - the seed's page on @stomp/stompjs from npm - from a tiny static server started
// here, and replays the seed's scenario against a herald started here:
//   1. jack connects (login/passcode/host headers), subscribes /queue/jack, sends a JSON body
//      (content-type text/plain) to it and sees it come back;
//   2. a second page as rose does not see jack's message;
//   3. a message a Python/TCP client (stomp.py) sends to /queue/jack arrives in jack's page;
//   4. a topic message reaches both pages;
//   5. a non-UTF-8 body published over TCP reaches jack's page as a binary WebSocket message
//      and the connection stays up (a text frame would make the browser close it: 1007);
//   6. herald's built-in page (http://127.0.0.1:<wsport>/) connects, sends to its own queue,
//      shows the message in #log; screenshot saved;
//   7. request/reply (RabbitMQ's temp queues): a page sends to a service queue with
//      reply-to:/temp-queue/rpc; respond.py (stomp.py over TCP) answers at the reply-to it got,
//      once verbatim (/reply-queue/amq.gen-...) and once through /amq/queue/amq.gen-...; both
//      replies reach the page's stompClient.onUnhandledMessage (no subscribe, no ack) with
//      subscription:/temp-queue/rpc, destination:/queue/amq.gen-<22>, no ack header, from one
//      queue; /amq/queue/X and /queue/X are one queue both ways; after the page disconnects a
//      late reply still gets its RECEIPT.
// Until per-user logins exist both pages log in as guest/guest; isolation is by queue name.
//
// Environment:
//   HERALD_BIN   the server binary (default <repo>/build/core/herald)
//   E2E_OUT      where screenshots and logs go (default <repo>/build/browser-e2e; never the
//                source tree)
//   CHROMIUM     the browser (default /usr/bin/chromium)
//   PYTHON       the interpreter with Debian's python3-stomp (default /usr/bin/python3)
//   HERALD_SHARDS  --shards (default 2)
//   HERALD_IO    --io for herald (unset: its default); herald must log that backend
// Bounded: every wait has a timeout and the whole run is capped at 55 s. Only processes
// started here are signalled, by PID.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, withTimeout } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const HERALD_BIN = process.env.HERALD_BIN || path.join(REPO, 'build', 'core', 'herald');
const OUT = path.resolve(process.env.E2E_OUT || path.join(REPO, 'build', 'browser-e2e'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PYTHON = process.env.PYTHON || '/usr/bin/python3';
const SHARDS = process.env.HERALD_SHARDS || '2';
const IO = process.env.HERALD_IO || '';
const TOTAL_MS = 55000;
const WAIT_MS = 10000;
const STOMPJS = path.join(HERE, 'node_modules', '@stomp', 'stompjs', 'bundles', 'stomp.umd.js');

const t0 = Date.now();
const cleanups = [];
let failed = 0;
let passed = 0;

function log(...a) {
	console.log(`[e2e ${((Date.now() - t0) / 1000).toFixed(2)}s]`, ...a);
}

function check(cond, what, detail) {
	if (cond) {
		passed++;
		log('ok  ', what);
	} else {
		failed++;
		log('FAIL', what, detail === undefined ? '' : typeof detail === 'string' ? detail : JSON.stringify(detail));
	}
	return cond;
}

async function cleanup() {
	while (cleanups.length) {
		const fn = cleanups.pop();
		try {
			await withTimeout(Promise.resolve().then(fn), 8000, 'cleanup step');
		} catch (e) {
			log('cleanup:', e.message);
		}
	}
}

// The whole run is bounded: past TOTAL_MS clean up what was started and fail.
const watchdog = setTimeout(async () => {
	log(`FAIL whole test exceeded ${TOTAL_MS} ms`);
	await cleanup();
	process.exit(1);
}, TOTAL_MS);

// --- herald ---------------------------------------------------------------------------------

async function startHerald() {
	if (!fs.existsSync(HERALD_BIN))
		throw new Error(`herald binary not found at ${HERALD_BIN} (set HERALD_BIN)`);
	const logPath = path.join(OUT, 'herald.log');
	const logFd = fs.openSync(logPath, 'w');
	const args = ['--bind', '127.0.0.1', '--stomp-port', '0', '--ws-port', '0', '--gossip-port', '0',
		'--admin-port', '0', '--shards', SHARDS, '--log-level', 'info'];
	if (IO)
		args.push('--io', IO);
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
	const re = /listening proto=(\w+) addr=([0-9.]+):(\d+)/g;
	const ports = {};
	const deadline = Date.now() + WAIT_MS;
	while (!(ports.stomp && ports.ws)) {
		const text = fs.readFileSync(logPath, 'utf8');
		for (const m of text.matchAll(re)) ports[m[1]] = Number(m[3]);
		if (ports.stomp && ports.ws) break;
		if (exited) throw new Error(`herald exited (${JSON.stringify(exited)}) before listening:\n${text}`);
		if (Date.now() > deadline) throw new Error(`herald did not log its listeners in ${WAIT_MS} ms:\n${text}`);
		await new Promise((r) => setTimeout(r, 20));
	}
	const text = fs.readFileSync(logPath, 'utf8');
	const backend = /io backend: ([^\n]*)/.exec(text);
	if (IO && !(backend && backend[1].startsWith(IO)))
		throw new Error(`herald did not log 'io backend: ${IO}' (HERALD_IO):\n${text}`);
	log(`herald pid ${proc.pid} stomp=${ports.stomp} ws=${ports.ws} io=${backend ? backend[1] : '?'}`);
	return { proc, ports, logPath, alive: () => !exited, exitInfo: () => exited };
}

// --- the static server for page.html and stomp.umd.js -----------------------------------------

async function startStatic() {
	const files = {
		'/': { file: path.join(HERE, 'page.html'), type: 'text/html; charset=utf-8' },
		'/stomp.umd.js': { file: STOMPJS, type: 'text/javascript; charset=utf-8' },
	};
	if (!fs.existsSync(STOMPJS))
		throw new Error(`${STOMPJS} missing: run \`npm ci\` in tests/browser`);
	const server = http.createServer((req, res) => {
		const f = files[new URL(req.url, 'http://x').pathname];
		if (!f || req.method !== 'GET') {
			res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
			return;
		}
		res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' });
		res.end(fs.readFileSync(f.file));
	});
	server.listen(0, '127.0.0.1');
	await withTimeout(once(server, 'listening'), 5000, 'static server listen');
	cleanups.push(() => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }));
	return server.address().port;
}

// --- the Python/TCP back end ----------------------------------------------------------------------

async function pyPublish(stompPort, msgs) {
	const args = [path.join(HERE, 'publish.py'), '127.0.0.1', String(stompPort)];
	for (const [dest, ctype, body] of msgs)
		args.push(dest, ctype, Buffer.from(body).toString('hex'));
	const proc = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '';
	proc.stdout.on('data', (d) => { out += d; });
	proc.stderr.on('data', (d) => { out += d; });
	const exit = once(proc, 'exit');
	const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
	try {
		const [code] = await withTimeout(exit, 21000, 'publish.py');
		if (code !== 0) throw new Error(`publish.py exited ${code}: ${out}`);
	} finally {
		clearTimeout(timer);
	}
	return out.trim();
}

// respond.py: subscribes to `service` and answers one request per entry of `vias` ('verbatim' or
// 'amq'). Resolves `ready` once its SUBSCRIBE has a RECEIPT; `done` with the JSON lines it
// printed (one per reply, after that reply's RECEIPT; on failure they are the error's .lines).
// Both bounded.
function startResponder(stompPort, service, vias) {
	const args = [path.join(HERE, 'respond.py'), '127.0.0.1', String(stompPort), service, ...vias];
	const proc = spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'] });
	let out = '';
	let exited = null;
	let onReady;
	const ready = new Promise((r) => { onReady = r; });
	proc.stdout.on('data', (d) => { out += d; if (/^ready$/m.test(out)) onReady(); });
	proc.stderr.on('data', (d) => { out += d; });
	const exit = once(proc, 'exit').then(([code]) => { exited = code; onReady(); return code; });
	const timer = setTimeout(() => proc.kill('SIGKILL'), 20000);
	cleanups.push(() => { clearTimeout(timer); if (exited === null) proc.kill('SIGKILL'); });
	const done = withTimeout(exit, 21000, 'respond.py').then((code) => {
		clearTimeout(timer);
		const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
		if (code !== 0) throw Object.assign(new Error(`respond.py exited ${code}: ${out}`), { lines });
		return lines;
	});
	done.catch(() => {});	// it may fail before it is awaited: not an unhandled rejection
	return {
		ready: withTimeout(ready, WAIT_MS, 'respond.py ready').then(() => {
			if (exited !== null) throw new Error(`respond.py exited ${exited} before ready: ${out}`);
		}),
		done,
	};
}

// --- the browser ------------------------------------------------------------------------------------

function launchBrowser() {
	return launchChromium({ cleanups, chromium: CHROMIUM, defaultTimeoutMs: WAIT_MS });
}

// WebSocket messages each page received, as the browser saw them: { type: 'text' | 'binary',
// data: Buffer }. (stompjs marks every received body binary, so the message type is taken
// from the browser's side of the wire, through playwright's websocket events.)
const wsFrames = new Map();

function watchPage(page, name, problems) {
	const frames = [];
	wsFrames.set(name, frames);
	page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
	page.on('console', (m) => {
		const url = m.location()?.url || '';
		if (m.type() === 'error' && !url.endsWith('/favicon.ico'))
			problems.push(`${name}: console error: ${m.text()} (${url})`);
	});
	page.on('websocket', (ws) => {
		ws.on('framereceived', (f) => {
			const text = typeof f.payload === 'string';
			frames.push({ type: text ? 'text' : 'binary', data: text ? Buffer.from(f.payload, 'utf8') : Buffer.from(f.payload) });
		});
		ws.on('socketerror', (e) => problems.push(`${name}: websocket error: ${e}`));
		ws.on('close', () => log(`${name}: websocket ${ws.url()} closed`));
	});
}

// The type of the WebSocket message that carried a STOMP frame whose bytes include `needle`.
function frameTypeOf(name, needle) {
	const f = (wsFrames.get(name) || []).find((x) => x.data.includes(Buffer.from(needle)));
	return f ? f.type : null;
}

async function openSeedPage(context, staticPort, wsPort, user, problems) {
	const page = await context.newPage();
	watchPage(page, user, problems);
	const url = `http://127.0.0.1:${staticPort}/?user=${encodeURIComponent(user)}&ws=` +
		encodeURIComponent(`ws://127.0.0.1:${wsPort}/ws`);
	await page.goto(url, { timeout: WAIT_MS });
	await page.fill('#username', user);
	await page.click('#loginButton');
	await page.waitForFunction(() => window.e2e.connected || window.e2e.errors.length ||
		window.e2e.closes.length, null, { timeout: WAIT_MS });
	const st = await page.evaluate(() => window.e2e);
	if (!st.connected)
		throw new Error(`${user}: did not connect: errors ${JSON.stringify(st.errors)} closes ` +
			`${JSON.stringify(st.closes)} debug ${JSON.stringify(st.debug.slice(-10))}`);
	await page.waitForFunction(() => document.querySelector('#response').textContent.includes('Connected'),
		null, { timeout: WAIT_MS });
	return page;
}

// Waits until pred(received) holds in the page (pred(unhandled) with waitUnhandled); true if so.
async function waitReceived(page, fnSource, arg, what, list = 'received') {
	try {
		await page.waitForFunction(([src, a, l]) => {
			const pred = new Function('r', 'a', src);
			return pred(window.e2e[l], a);
		}, [fnSource, arg, list], { timeout: WAIT_MS });
		return true;
	} catch (e) {
		const st = await page.evaluate(() => window.e2e).catch(() => ({}));
		log(`     ${what}: ${e.message.split('\n')[0]}; page saw ${JSON.stringify(st[list])} ` +
			`closes ${JSON.stringify(st.closes)} debug tail ${JSON.stringify((st.debug || []).slice(-8))}`);
		return false;
	}
}

function waitUnhandled(page, fnSource, arg, what) {
	return waitReceived(page, fnSource, arg, what, 'unhandled');
}

// --- the scenario -------------------------------------------------------------------------------------

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	const problems = [];
	const herald = await startHerald();
	const staticPort = await startStatic();
	const context = await launchBrowser();
	const version = context.browser()?.version?.() ?? '(persistent context)';
	log(`chromium ${version} launched from ${CHROMIUM}`);

	const nonce = Math.random().toString(36).slice(2, 8);

	// 1. jack: connect, subscribe /queue/jack, send JSON to it, see it come back
	const jack = await openSeedPage(context, staticPort, herald.ports.ws, 'jack', problems);
	const jackVersion = await jack.evaluate(() => window.e2e.version);
	check(jackVersion === '1.2', 'jack connected over STOMP 1.2 (login/passcode/host headers)', jackVersion);
	const rose = await openSeedPage(context, staticPort, herald.ports.ws, 'rose', problems);
	check(true, 'rose connected');

	const jackText = `hello from jack ${nonce}`;
	await jack.fill('#message', jackText);
	await jack.click('#send');
	const jackBody = JSON.stringify({ username: 'jack', message: jackText });
	check(await waitReceived(jack, 'return r.some(m => m.where === "queue" && m.body === a && ' +
		'm.destination === "/queue/jack" && m.contentType === "text/plain")', jackBody,
		'jack round trip'), 'jack sees his JSON message come back on /queue/jack (text/plain)');
	check(frameTypeOf('jack', jackBody) === 'text', 'it came as a text WebSocket message',
		frameTypeOf('jack', jackBody));
	check(await jack.evaluate((t) => document.querySelector('#response').textContent.includes(t), jackText),
		"jack's #response shows the message");

	// 3. a Python/TCP service publishes to /queue/jack; 4. and to the topic both pages follow
	const pyText = `from the python service ${nonce}`;
	const topicText = `topic news ${nonce}`;
	const out = await pyPublish(herald.ports.stomp, [
		['/queue/jack', 'text/plain', pyText],
		['/topic/news', 'text/plain', topicText],
	]);
	log(`publish.py: ${out}`);
	check(await waitReceived(jack, 'return r.some(m => m.where === "queue" && m.body === a)', pyText,
		'python -> jack'), "stomp.py's message to /queue/jack arrives in jack's page");
	for (const [name, page] of [['jack', jack], ['rose', rose]]) {
		check(await waitReceived(page, 'return r.some(m => m.where === "topic" && m.body === a && ' +
			'm.destination === "/topic/news")', topicText, `topic -> ${name}`),
		`the topic message reaches ${name}'s page`);
	}

	// 2. rose saw the topic message (so she was listening) and nothing of jack's queue
	const roseGot = await rose.evaluate(() => window.e2e.received);
	check(!roseGot.some((m) => m.where === 'queue' || (m.body || '').includes('jack')),
		"rose's page does not see jack's messages", roseGot);
	check(!(await rose.evaluate(() => document.querySelector('#response').textContent))
		.includes(jackText), "rose's #response does not show jack's message");

	// 5. a non-UTF-8 body from TCP: a binary WebSocket message; the connection stays up
	const bin = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41, 0xc3]);
	await pyPublish(herald.ports.stomp, [['/queue/jack', 'application/octet-stream', bin],
		['/queue/jack', 'text/plain', `after binary ${nonce}`]]);
	check(await waitReceived(jack, 'return r.some(m => JSON.stringify(m.bytes) === a)',
		JSON.stringify([...bin]), 'binary -> jack'),
	"a non-UTF-8 body arrives in jack's page, bytes intact");
	check(frameTypeOf('jack', bin) === 'binary', 'it came as a binary WebSocket message',
		frameTypeOf('jack', bin));
	check(frameTypeOf('jack', `after binary ${nonce}`) === 'text', 'the next UTF-8 body came as text',
		frameTypeOf('jack', `after binary ${nonce}`));
	check(await waitReceived(jack, 'return r.some(m => m.body === a)', `after binary ${nonce}`,
		'text after binary'), "jack's connection survives the binary message (no 1007)");

	// no connection dropped, no script errors so far
	for (const [name, page] of [['jack', jack], ['rose', rose]]) {
		const st = await page.evaluate(() => window.e2e);
		check(st.connected && st.closes.length === 0 && st.errors.length === 0,
			`${name}'s STOMP connection stayed up`, { closes: st.closes, errors: st.errors });
	}
	await jack.screenshot({ path: path.join(OUT, 'seed-page-jack.png'), fullPage: true });
	await rose.screenshot({ path: path.join(OUT, 'seed-page-rose.png'), fullPage: true });

	// jack disconnects cleanly (DISCONNECT + receipt): the browser should see a clean close
	await jack.click('#disconnect');
	try {
		await jack.waitForFunction(() => window.e2e.closes.length > 0, null, { timeout: 5000 });
		const closes = await jack.evaluate(() => window.e2e.closes);
		check(closes[0].code === 1000, 'after DISCONNECT the browser sees a clean close (1000)', closes);
	} catch (e) {
		check(false, 'after DISCONNECT the WebSocket closes', e.message.split('\n')[0]);
	}

	// 6. herald's built-in page, served on the WebSocket port
	const builtin = await context.newPage();
	watchPage(builtin, 'built-in', problems);
	const resp = await builtin.goto(`http://127.0.0.1:${herald.ports.ws}/`, { timeout: WAIT_MS });
	check(resp && resp.status() === 200, 'built-in page served with 200 at /', resp && resp.status());
	const own = `e2e-${nonce}`;
	await builtin.fill('#user', 'guest');
	await builtin.fill('#pass', 'guest');
	await builtin.fill('#vhost', '/');
	await builtin.fill('#name', own);
	await builtin.click('#connect');
	let builtinOk = true;
	try {
		await builtin.waitForFunction((q) => document.querySelector('#log').textContent.includes('subscribed to ' + q),
			`/queue/${own}`, { timeout: WAIT_MS });
	} catch (e) {
		builtinOk = false;
	}
	check(builtinOk, 'built-in page connects and subscribes to its own queue',
		builtinOk ? undefined : await builtin.evaluate(() => document.body.innerText));
	const builtinText = `hi from the built-in page ${nonce}`;
	await builtin.fill('#to', `/queue/${own}`);
	await builtin.fill('#text', builtinText);
	await builtin.click('#send');
	let shown = true;
	try {
		await builtin.waitForFunction((t) => document.querySelector('#log').textContent.includes(t),
			builtinText, { timeout: WAIT_MS });
	} catch (e) {
		shown = false;
	}
	check(shown, "the message sent to its own queue shows in the built-in page's #log",
		shown ? undefined : await builtin.evaluate(() => document.querySelector('#log').innerText));
	const shot = path.join(OUT, 'builtin-page.png');
	await builtin.screenshot({ path: shot, fullPage: true });
	check(fs.statSync(shot).size > 1000, `screenshot saved: ${shot}`);

	// 7. request/reply through RabbitMQ's temp queues: the page is the requester (it never
	// subscribes to /temp-queue/rpc - stompjs has no API for it - and never acks a reply: the
	// replies come to stompClient.onUnhandledMessage); respond.py is the service, over TCP
	const svc = `/queue/svc-${nonce}`;
	const responder = startResponder(herald.ports.stomp, svc, ['verbatim', 'amq']);
	const rpcUser = `rpc-${nonce}`;
	const [rpc] = await Promise.all([
		openSeedPage(context, staticPort, herald.ports.ws, rpcUser, problems),
		responder.ready,
	]);
	const request = (body, cid) => rpc.evaluate(([dest, b, c]) => {
		window.stompClient.publish({ destination: dest, body: b,
			headers: { 'reply-to': '/temp-queue/rpc', 'correlation-id': c, 'content-type': 'text/plain' } });
	}, [svc, body, cid]);
	const replyNamed = 'return r.some(m => m.body === a)';
	const req1 = `ping 1 ${nonce}`;
	await request(req1, `c1-${nonce}`);
	const got1 = await waitUnhandled(rpc, replyNamed, `pong: ${req1}`, 'reply 1');
	const req2 = `ping 2 ${nonce}`;
	await request(req2, `c2-${nonce}`);
	const got2 = await waitUnhandled(rpc, replyNamed, `pong: ${req2}`, 'reply 2');
	let answered = [];
	try {
		answered = await responder.done;
	} catch (e) {
		check(false, 'respond.py answered both requests', e.message);
		answered = e.lines || [];
	}
	const unhandled = await rpc.evaluate(() => window.e2e.unhandled);
	const reply1 = unhandled.find((m) => m.body === `pong: ${req1}`);
	const reply2 = unhandled.find((m) => m.body === `pong: ${req2}`);
	const amqGen = /^amq\.gen-[A-Za-z0-9_-]{22}$/;
	const replyTo = answered[0]?.reply_to || '';
	const tempQ = replyTo.replace(/^\/reply-queue\//, '');
	check(answered[0]?.body === req1 && answered[0]?.destination === svc &&
		replyTo.startsWith('/reply-queue/') && amqGen.test(tempQ),
	`the service got the request on ${svc} with reply-to:/reply-queue/amq.gen-<22 base64url>`, answered);
	check(answered[1]?.reply_to === replyTo, 'the second request on /temp-queue/rpc names the same reply queue',
		answered);
	check(answered[1]?.sent_to === `/amq/queue/${tempQ}`, 'the second reply went through /amq/queue/amq.gen-...',
		answered[1]);
	for (const [n, got, m, cid] of [[1, got1, reply1, `c1-${nonce}`], [2, got2, reply2, `c2-${nonce}`]]) {
		const h = m?.headers || {};
		check(got && h.subscription === '/temp-queue/rpc' && h.destination === `/queue/${tempQ}` &&
			amqGen.test(h.destination.slice('/queue/'.length)) && !('ack' in h) && h['correlation-id'] === cid,
		`reply ${n} (${n === 1 ? 'verbatim reply-to' : 'via /amq/queue/'}) reaches onUnhandledMessage: ` +
			'subscription:/temp-queue/rpc, destination:/queue/amq.gen-..., no ack, correlation-id kept', m);
	}
	check(unhandled.length === 2, 'exactly the two replies reached onUnhandledMessage', unhandled);

	// /amq/queue/X and /queue/X are one queue: the page sends to /amq/queue/<its queue>, which
	// it subscribed as /queue/<name>; and a /amq/queue/ subscription gets what TCP sends to /queue/
	const viaAmq = `sent on /amq/queue ${nonce}`;
	await rpc.evaluate(([d, b]) => window.stompClient.publish({ destination: d, body: b,
		headers: { 'content-type': 'text/plain' } }), [`/amq/queue/${rpcUser}`, viaAmq]);
	check(await waitReceived(rpc, 'return r.some(m => m.where === "queue" && m.body === a && ' +
		`m.destination === "/queue/${rpcUser}")`, viaAmq, '/amq/queue -> /queue'),
	`a SEND to /amq/queue/${rpcUser} reaches the page's /queue/${rpcUser} subscriber (destination:/queue/...)`);
	const amqName = `amq-sub-${nonce}`;
	await withTimeout(rpc.evaluate((d) => new Promise((resolve) => {
		const receipt = `sub-${d}`;
		window.stompClient.watchForReceipt(receipt, resolve);
		window.stompClient.subscribe(d, (m) => record('amq', m), { receipt });
	}), `/amq/queue/${amqName}`), WAIT_MS, `RECEIPT for SUBSCRIBE /amq/queue/${amqName}`);
	const viaQueue = `sent on /queue ${nonce}`;
	await pyPublish(herald.ports.stomp, [[`/queue/${amqName}`, 'text/plain', viaQueue]]);
	check(await waitReceived(rpc, 'return r.some(m => m.where === "amq" && m.body === a)', viaQueue,
		'/queue -> /amq/queue'), `a stomp.py SEND to /queue/${amqName} reaches the page's /amq/queue/${amqName} subscriber`);
	const rpcSt = await rpc.evaluate(() => window.e2e);
	check(rpcSt.connected && rpcSt.closes.length === 0 && rpcSt.errors.length === 0 &&
		!rpcSt.received.some((m) => (m.body || '').startsWith('pong:')),
	"the requester's connection stayed up, and no reply went to a subscription's callback",
		{ closes: rpcSt.closes, errors: rpcSt.errors });
	await rpc.screenshot({ path: path.join(OUT, 'rpc-page.png'), fullPage: true });

	// the reply queue dies with the connection: a late reply is accepted (RECEIPT) and dropped
	await rpc.click('#disconnect');
	try {
		await rpc.waitForFunction(() => window.e2e.closes.length > 0, null, { timeout: 5000 });
		let late = null;
		if (replyTo) {
			try {
				late = await pyPublish(herald.ports.stomp, [[replyTo, 'text/plain', `late ${nonce}`]]);
			} catch (e) {
				late = e.message;
			}
		}
		check(late === 'ok 1', `after the requester left, a late reply to ${replyTo || '(none)'} still gets its RECEIPT`,
			late);
	} catch (e) {
		check(false, "the requester's WebSocket closes after DISCONNECT", e.message.split('\n')[0]);
	}

	check(problems.length === 0, 'no page errors or console errors', problems);
	check(herald.alive(), 'herald still running', herald.exitInfo());
}

for (const sig of ['SIGINT', 'SIGTERM']) {
	process.on(sig, async () => {
		log(`FAIL interrupted by ${sig}`);
		await cleanup();
		process.exit(1);
	});
}

let code = 0;
try {
	await main();
} catch (e) {
	failed++;
	log('FAIL', e.stack || e.message);
}
await cleanup();
clearTimeout(watchdog);
if (failed) {
	code = 1;
	log(`${failed} failed, ${passed} passed (logs and screenshots in ${OUT})`);
} else {
	log(`all ${passed} checks passed (screenshots in ${OUT})`);
}
process.exit(code);
