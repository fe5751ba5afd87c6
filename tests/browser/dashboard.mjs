// tests/browser/dashboard.mjs - the admin dashboard (issue 14) in a real browser.
//
// Starts a 3-node herald cluster on 127.0.0.1 (every port 0, read back from each log's
// "listening proto=<p> addr=127.0.0.1:<port>"), waits until node n1 sees 3 members alive and
// its links to the other two up, then makes traffic with a raw-socket STOMP 1.2 client:
// subscribers to /topic/dash-<nonce> on n2 and n1, 200 SENDs to it on n1, 20 SENDs to each of
// a few queues nobody consumes (queues live on their owner node: the test keeps the ones n1
// owns, from n1's /api/queues), and a trickle of topic SENDs while the page is open. Then
// Debian's chromium (playwright-core) opens http://127.0.0.1:<n1 admin>/ and checks what it
// shows: 3 members alive, links to n2 and n3 up, n1's queues with 20 messages each (deepest
// first), deliveries with a non-zero total and latest rate, links to the other members'
// dashboards (n2's is opened and names n2), no page or console errors; screenshots saved.
//
// Environment: HERALD_BIN (default <repo>/build/core/herald), E2E_OUT (default
// <repo>/build/browser-dashboard), CHROMIUM (default /usr/bin/chromium).
// Bounded: every wait has a timeout and the whole run is capped at 55 s. Only the processes
// started here are signalled, by PID.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRun, launchChromium, withTimeout } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const HERALD_BIN = process.env.HERALD_BIN || path.join(REPO, 'build', 'core', 'herald');
const OUT = path.resolve(process.env.E2E_OUT || path.join(REPO, 'build', 'browser-dashboard'));
const WAIT_MS = 10000;
const NONCE = Math.random().toString(36).slice(2, 8);
const TOPIC = `/topic/dash-${NONCE}`;

const { log, check, cleanups, finish } = createRun('dashboard', 55000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn until it returns a truthy value (returned) or ms pass (throws, naming what).
async function until(fn, ms, what) {
	const deadline = Date.now() + ms;
	let last;
	for (;;) {
		try {
			last = await fn();
			if (last) return last;
		} catch (e) {
			last = e.message;
		}
		if (Date.now() > deadline)
			throw new Error(`timed out after ${ms} ms: ${what} (last: ${JSON.stringify(last)})`);
		await sleep(100);
	}
}

// --- the cluster ------------------------------------------------------------------------------

async function startNode(name, join) {
	const logPath = path.join(OUT, `${name}.log`);
	const fd = fs.openSync(logPath, 'w');
	const args = ['--bind', '127.0.0.1', '--stomp-port', '0', '--ws-port', '0', '--shards', '1',
		'--node-name', name, '--gossip-bind', '127.0.0.1', '--gossip-port', '0', '--route-port', '0',
		'--admin-bind', '127.0.0.1', '--admin-port', '0', '--gossip-interval', '200', '--log-level', 'info'];
	if (join)
		args.push('--join', join);
	const proc = spawn(HERALD_BIN, args, { stdio: ['ignore', fd, fd] });
	fs.closeSync(fd);
	let exited = null;
	proc.on('exit', (code, sig) => { exited = { code, sig }; });
	cleanups.push(async () => {
		if (exited) return;
		proc.kill('SIGTERM');
		const timer = setTimeout(() => { if (!exited) proc.kill('SIGKILL'); }, 5000);
		if (!exited) await once(proc, 'exit');
		clearTimeout(timer);
	});
	const want = ['stomp', 'gossip', 'admin'];
	const ports = await until(() => {
		const text = fs.readFileSync(logPath, 'utf8');
		if (exited) throw new Error(`${name} exited ${JSON.stringify(exited)}:\n${text}`);
		const p = {};
		for (const m of text.matchAll(/listening proto=(\w+) addr=127\.0\.0\.1:(\d+)/g)) p[m[1]] = Number(m[2]);
		return want.every((k) => p[k]) && p;
	}, WAIT_MS, `${name} logs its listeners`);
	log(`${name} pid ${proc.pid} ${JSON.stringify(ports)}`);
	return { name, proc, ports, alive: () => !exited };
}

async function getJson(port, p) {
	const r = await fetch(`http://127.0.0.1:${port}${p}`);
	if (!r.ok) throw new Error(`${p}: HTTP ${r.status}`);
	return r.json();
}

// --- a raw-socket STOMP 1.2 client --------------------------------------------------------------

class Stomp {
	static async open(port, label) {
		const sock = net.connect(port, '127.0.0.1');
		await withTimeout(once(sock, 'connect'), WAIT_MS, `${label} connect`);
		const c = new Stomp(sock, label);
		cleanups.push(() => sock.destroy());
		c.write('CONNECT', { 'accept-version': '1.2', host: '/', login: 'guest', passcode: 'guest',
			'heart-beat': '0,0' });
		await c.next((f) => f.cmd === 'CONNECTED', 'CONNECTED');
		return c;
	}

	constructor(sock, label) {
		this.sock = sock;
		this.label = label;
		this.buf = '';
		this.frames = [];
		this.messages = 0;
		sock.setEncoding('utf8');
		sock.on('data', (d) => this.onData(d));
		sock.on('error', (e) => log(`${label}: socket error ${e.message}`));
	}

	onData(d) {
		this.buf += d;
		let i;
		while ((i = this.buf.indexOf('\0')) >= 0) {
			const text = this.buf.slice(0, i).replace(/^[\r\n]+/, '');
			this.buf = this.buf.slice(i + 1);
			const sep = text.indexOf('\n\n');
			const lines = text.slice(0, sep < 0 ? text.length : sep).split('\n');
			const headers = {};
			for (const l of lines.slice(1)) {
				const c = l.indexOf(':');
				if (!(l.slice(0, c) in headers)) headers[l.slice(0, c)] = l.slice(c + 1);
			}
			const f = { cmd: lines[0], headers, body: sep < 0 ? '' : text.slice(sep + 2) };
			if (f.cmd === 'MESSAGE') this.messages++;
			else this.frames.push(f);
			if (f.cmd === 'ERROR') log(`${this.label}: ERROR ${headers.message} ${f.body}`);
		}
	}

	write(cmd, headers, body = '') {
		let s = `${cmd}\n`;
		for (const k in headers) s += `${k}:${headers[k]}\n`;
		this.sock.write(`${s}\n${body}\0`);
	}

	next(pred, what) {
		return until(() => {
			const err = this.frames.find((f) => f.cmd === 'ERROR');
			if (err) throw new Error(`${this.label}: ERROR ${err.headers.message}`);
			return this.frames.find(pred);
		}, WAIT_MS, `${this.label}: ${what}`);
	}

	async receipted(cmd, headers, body) {
		const id = `r-${Math.random().toString(36).slice(2)}`;
		this.write(cmd, { ...headers, receipt: id }, body);
		await this.next((f) => f.cmd === 'RECEIPT' && f.headers['receipt-id'] === id, `RECEIPT for ${cmd}`);
	}
}

// --- the scenario -------------------------------------------------------------------------------

async function main() {
	fs.mkdirSync(OUT, { recursive: true });
	if (!fs.existsSync(HERALD_BIN))
		throw new Error(`herald binary not found at ${HERALD_BIN} (set HERALD_BIN)`);
	const n1 = await startNode('n1');
	const seed = `127.0.0.1:${n1.ports.gossip}`;
	const [n2, n3] = await Promise.all([startNode('n2', seed), startNode('n3', seed)]);
	const nodes = [n1, n2, n3];
	const admin1 = n1.ports.admin;

	const st = await until(async () => {
		const s = await getJson(admin1, '/cluster/status');
		const others = s.members.filter((m) => m.name !== 'n1');
		// and every node's agreed view has all three active: queues are placed by it, and
		// a member still joining would take its queues over under the test's traffic
		const views = await Promise.all(nodes.map((n) => getJson(n.ports.admin, '/cluster/status')));
		const settled = views.every((v) => v.controller && v.controller.view.length === 3 &&
			v.controller.view.every((m) => m.state === 'active') &&
			v.controller.epoch === views[0].controller.epoch);
		return s.members.length === 3 && s.members.every((m) => m.state === 'alive') &&
			others.every((m) => m.link === 'up') && settled && s;
	}, 15000, "3 members alive, links up, and one view of all three active");
	log('cluster formed:', st.members.map((m) => `${m.name}=${m.state}/${m.link || 'self'}`).join(' '));

	// topic traffic: subscribers on n2 and n1, publisher on n1; probes until n2's interest
	// reached n1, then 200 messages
	const sub2 = await Stomp.open(n2.ports.stomp, 'sub@n2');
	await sub2.receipted('SUBSCRIBE', { id: 's2', destination: TOPIC, ack: 'auto' });
	const sub1 = await Stomp.open(n1.ports.stomp, 'sub@n1');
	await sub1.receipted('SUBSCRIBE', { id: 's1', destination: TOPIC, ack: 'auto' });
	const pub = await Stomp.open(n1.ports.stomp, 'pub@n1');
	await until(async () => {
		await pub.receipted('SEND', { destination: TOPIC, 'content-type': 'text/plain' }, 'probe');
		return sub2.messages > 0;
	}, WAIT_MS, "n2's subscription reaches n1");
	const before2 = sub2.messages;
	for (let i = 0; i < 199; i++)
		pub.write('SEND', { destination: TOPIC, 'content-type': 'text/plain' }, `m${i}`);
	await pub.receipted('SEND', { destination: TOPIC, 'content-type': 'text/plain' }, 'm199');
	await until(() => sub2.messages - before2 >= 200, WAIT_MS, 'n2 receives the 200 messages');
	log(`200 messages on ${TOPIC}: n2 got ${sub2.messages - before2}, n1 got ${sub1.messages}`);

	// 20 messages to each of a few consumer-less queues; each lives on its owner node, so keep
	// adding queues until n1 owns at least one (each has 1/3 chance)
	const mine = [];
	for (let batch = 0; batch < 4 && !mine.length; batch++) {
		const names = Array.from({ length: 6 }, (_, i) => `/queue/dash-${NONCE}-${batch}${i}`);
		for (const q of names) {
			for (let i = 0; i < 19; i++) pub.write('SEND', { destination: q, 'content-type': 'text/plain' }, `q${i}`);
			await pub.receipted('SEND', { destination: q, 'content-type': 'text/plain' }, 'q19');
		}
		// queue figures come from each shard's once-a-second snapshot: wait until every node
		// reports each name once with its 20 messages
		const owned = await until(async () => {
			const lists = await Promise.all(nodes.map((n) => getJson(n.ports.admin, '/api/queues')));
			const all = lists.flatMap((l) => l.queues).filter((q) => names.includes(q.name));
			return all.length === names.length && all.every((q) => q.messages === 20) && lists[0].queues;
		}, WAIT_MS, `the queues of batch ${batch} show 20 messages each on their owners`);
		mine.push(...owned.filter((q) => names.includes(q.name)).map((q) => q.name));
	}
	check(mine.length > 0, `n1 owns some of the queues: ${mine.join(' ')}`);

	// a trickle while the page is open, so its latest rates are not zero
	const trickle = setInterval(() => pub.write('SEND', { destination: TOPIC }, 'tick'), 100);
	cleanups.push(() => clearInterval(trickle));

	const context = await launchChromium({ cleanups, defaultTimeoutMs: WAIT_MS,
		viewport: { width: 1200, height: 900 } });
	const problems = [];
	const page = await context.newPage();
	page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
	page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
	const url = `http://127.0.0.1:${admin1}/`;
	await page.goto(url, { timeout: WAIT_MS });
	log(`opened ${url}`);

	// what the page shows, read from its DOM
	const read = () => page.evaluate(() => {
		const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)]
			.map((tr) => [...tr.cells].map((td) => td.textContent));
		const card = (id) => ({ big: document.querySelector(`#${id} .big`)?.textContent,
			sub: document.querySelector(`#${id} .sub`)?.textContent });
		return {
			samples: Number(document.body.dataset.samples || 0),
			self: document.getElementById('self').textContent,
			status: document.getElementById('status').textContent,
			members: rows('members'), links: rows('links'), queues: rows('queues'),
			hrefs: [...document.querySelectorAll('#members a')].map((a) => a.href),
			deliveries: card('deliveries'), bytes: card('bytes'), connections: card('connections'),
			membersCard: card('members-card'),
		};
	});
	const rateOf = (s) => { const m = /^([\d.]+)(k|M|G)?\/s$/.exec(s || ''); return m ? Number(m[1]) : 0; };
	let shown;
	try {
		shown = await until(async () => {
			const v = await read();
			// five polls (8 s), so the charts have lines to show in the screenshot
			const ok = v.samples >= 5 && v.members.length === 3 && v.links.length === 2 &&
				v.queues.length > 0 && rateOf(v.deliveries.big) > 0;
			return ok && v;
		}, 20000, 'the dashboard shows members, links, queues and a delivery rate');
	} catch (e) {
		log(e.message);
		shown = await read();
	}
	await page.screenshot({ path: path.join(OUT, 'dashboard.png'), fullPage: true });
	log('page shows', JSON.stringify(shown));

	check(shown.self === 'n1', 'the page names the node it is served by', shown.self);
	const states = Object.fromEntries(shown.members.map((r) => [r[0].replace(' (this node)', ''), r[1]]));
	check(shown.members.length === 3 && ['n1', 'n2', 'n3'].every((n) => states[n] === 'alive'),
		'3 members listed, each alive', shown.members);
	check(shown.membersCard.big === '3 / 3 alive', 'the members card says 3 / 3 alive', shown.membersCard);
	const links = Object.fromEntries(shown.links.map((r) => [r[0], r[1]]));
	check(shown.links.length === 2 && links.n2 === 'up' && links.n3 === 'up', 'links to n2 and n3 shown up',
		shown.links);
	const q = Object.fromEntries(shown.queues.map((r) => [r[0], Number(r[2])]));
	check(mine.every((n) => q[n] === 20), `n1's queues listed with 20 messages each (${mine.length})`,
		shown.queues);
	const depths = shown.queues.map((r) => Number(r[2]));
	check(depths.every((d, i) => i === 0 || depths[i - 1] >= d), 'queues listed deepest first', depths);
	const total = Number((/delivered (\d+)/.exec(shown.deliveries.sub) || [])[1] || 0);
	check(total >= 200, `deliveries total on n1 is at least 200 (${total})`, shown.deliveries);
	check(rateOf(shown.deliveries.big) > 0, `latest delivery rate is non-zero (${shown.deliveries.big})`,
		shown.deliveries);
	check(Number(shown.connections.big) >= 2, `connections on n1 shown (${shown.connections.big})`,
		shown.connections);
	const want = [n2, n3].map((n) => `http://127.0.0.1:${n.ports.admin}/`).sort();
	check(JSON.stringify(shown.hrefs.slice().sort()) === JSON.stringify(want),
		"the other members' dashboards are linked at their admin ports", shown.hrefs);

	// the link to n2's dashboard opens a page that names n2
	const other = await context.newPage();
	other.on('pageerror', (e) => problems.push(`n2 page error: ${e.message}`));
	await other.goto(want.find((u) => u.endsWith(`:${n2.ports.admin}/`)), { timeout: WAIT_MS });
	const otherSelf = await until(() => other.evaluate(() => {
		const n = document.querySelectorAll('#members tbody tr').length;
		return n === 3 && document.getElementById('self').textContent;
	}), WAIT_MS, "n2's dashboard lists 3 members").catch((e) => e.message);
	check(otherSelf === 'n2', "n2's dashboard names n2", otherSelf);
	await other.screenshot({ path: path.join(OUT, 'dashboard-n2.png'), fullPage: true });

	check(problems.length === 0, 'no page errors or console errors', problems);
	check(nodes.every((n) => n.alive()), 'all three nodes still running');
}

let err = null;
try {
	await main();
} catch (e) {
	err = e;
}
await finish(err, OUT);
