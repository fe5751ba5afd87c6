/*
 * proto/stomp_parse.c - incremental, zero-copy STOMP 1.0/1.1/1.2 frame parser.
 * Spec: stomp.github.io/stomp-specification-1.2.html, "STOMP Frames", "Value Encoding",
 * "Size Limits", "Heart-beating", "Augmented BNF". Pure; called by the connection's shard.
 *
 * A frame is scanned in three states (command line, header lines, body) and the scan
 * position is kept as offsets in struct stomp_parser, so a frame fed in pieces is examined
 * once: every byte is looked at by one memchr, except that a frame which needed several
 * calls has its header lines split again once it is complete (its earlier header views
 * pointed into a buffer that may have moved).
 *
 * The invariant that makes chunked and whole input agree: every decision depends only on
 * bytes at fixed offsets of the frame, never on how many bytes this call happened to get.
 * A search for a delimiter looks only inside a window whose end is set by the limits
 * (the line may hold max_header_line bytes plus CR LF, the frame max_frame bytes); the
 * search fails, with the error of whichever window ends first, once the window is full.
 */
#include "proto/stomp_parse.h"

#include <stdio.h>
#include <string.h>

enum parse_state {
	ST_START = 0,	/* at a frame boundary; nothing of the frame scanned yet */
	ST_COMMAND,	/* scanning the command line */
	ST_HEADERS,	/* scanning header lines; line_start is the current one */
	ST_BODY,	/* blank line seen; waiting for the body and its NUL */
	ST_FAILED,	/* an error was returned; p->err is returned again */
};

/* Reasons without the numbers (stomp_parse_strerror), indexed by -err. */
static const char *const reasons[] = {
	[-STOMP_E_FRAME_TOO_LARGE] = "frame too large",
	[-STOMP_E_TOO_MANY_HEADERS] = "too many headers",
	[-STOMP_E_HEADER_LINE_TOO_LONG] = "header line too long",
	[-STOMP_E_BODY_TOO_LARGE] = "body too large",
	[-STOMP_E_COMMAND_TOO_LONG] = "command too long",
	[-STOMP_E_UNKNOWN_COMMAND] = "unknown command",
	[-STOMP_E_BAD_HEADER] = "malformed header line (no ':' or empty header name)",
	[-STOMP_E_BAD_ESCAPE] = "undefined escape sequence in header",
	[-STOMP_E_BAD_CONTENT_LENGTH] = "content-length is not a non-negative decimal number",
	[-STOMP_E_MISSING_NUL] = "frame body not terminated by NUL after content-length bytes",
	[-STOMP_E_SCRATCH_FULL] = "unescaped headers too large for the parser's buffer",
	[-STOMP_E_NUL_IN_HEADER] = "NUL byte in a header line",
};

const char *stomp_parse_strerror(int err)
{
	if (err >= 0 || (size_t)-err >= sizeof(reasons) / sizeof(reasons[0]))
		return "unknown parse error";
	return reasons[-err];
}

static size_t add_sat(size_t a, size_t b)
{
	return a + b < a ? SIZE_MAX : a + b;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Records err and a reason naming the limit that was passed (0: no number to show). */
static int fail(struct stomp_parser *p, int err, size_t limit, const char *unit)
{
	p->state = ST_FAILED;
	p->err = err;
	p->reason = stomp_parse_strerror(err);
	if (unit) {
		snprintf(p->reason_buf, sizeof(p->reason_buf), "%s (limit %zu%s)", p->reason, limit,
			 unit);
		p->reason = p->reason_buf;
	}
	return err;
}

static int fail_escape(struct stomp_parser *p)
{
	static const char v11[] =
		"undefined escape sequence in header (STOMP 1.1 allows \\n \\c \\\\)";
	static const char v12[] =
		"undefined escape sequence in header (STOMP 1.2 allows \\r \\n \\c \\\\)";

	fail(p, STOMP_E_BAD_ESCAPE, 0, NULL);
	p->reason = p->version == STOMP_V11 ? v11 : v12;
	return p->err;
}

void stomp_parser_init(struct stomp_parser *p, const struct stomp_limits *limits,
		       char *scratch, size_t scratch_cap)
{
	memset(p, 0, sizeof(*p));
	p->version = STOMP_V12;
	p->state = ST_START;
	stomp_parser_set_limits(p, limits, scratch, scratch_cap);
}

void stomp_parser_set_limits(struct stomp_parser *p, const struct stomp_limits *limits,
			     char *scratch, size_t scratch_cap)
{
	if (limits)
		p->limits = *limits;
	else
		stomp_limits_default(&p->limits);
	if (p->limits.max_headers > STOMP_HEADERS_CAP)
		p->limits.max_headers = STOMP_HEADERS_CAP;
	p->scratch = scratch;
	p->scratch_cap = scratch ? scratch_cap : 0;
}

bool stomp_parser_is_between_frames(const struct stomp_parser *p)
{
	return p->state == ST_START;
}

void stomp_parser_set_version(struct stomp_parser *p, enum stomp_version v)
{
	p->version = v;
}

/* Counts the EOLs (LF or CR LF) at the start of buf; returns the bytes they take. */
static size_t skip_eols(const char *buf, size_t len, size_t *eols)
{
	size_t i = 0;

	*eols = 0;
	for (;;) {
		if (i < len && buf[i] == '\n') {
			i++;
		} else if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n') {
			i += 2;
		} else {
			return i;
		}
		++*eols;
	}
}

/* Line [start, nl) without the CR of a CR LF ending. */
static size_t line_end(const char *b, size_t start, size_t nl)
{
	return nl > start && b[nl - 1] == '\r' ? nl - 1 : nl;
}

/*
 * Looks for `c` in b[scan_off..), inside the window that ends at `window` (exclusive).
 * Returns its offset; or SIZE_MAX when it is not in the n bytes there are yet (scan_off
 * moves on); or SIZE_MAX - 1 when the whole window is there without it.
 */
#define NOT_YET SIZE_MAX
#define WINDOW_FULL (SIZE_MAX - 1)
static size_t find_in_window(struct stomp_parser *p, const char *b, size_t n, char c,
			     size_t window)
{
	size_t stop = min_size(n, window);
	const char *hit = memchr(b + p->scan_off, c, stop - p->scan_off);

	if (hit)
		return (size_t)(hit - b);
	if (n < window) {
		p->scan_off = n;
		return NOT_YET;
	}
	return WINDOW_FULL;
}

/* Returns 1 when the command line is complete and known, 0 for more input, or an error. */
/* Upper-case letters only, like every STOMP command: an unknown one that looks like a
 * command is parsed as a frame; anything else ("GET / HTTP/1.1") fails at once. */
static bool is_command_word(const char *b, size_t len)
{
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (b[i] < 'A' || b[i] > 'Z')
			return false;
	return true;
}

static int scan_command(struct stomp_parser *p, const char *b, size_t n)
{
	const struct stomp_limits *l = &p->limits;
	size_t frame_w = l->max_frame;
	size_t cmd_w = add_sat(l->max_command, 2);	/* command, CR, LF */
	size_t nl = find_in_window(p, b, n, '\n', min_size(frame_w, cmd_w));
	size_t end;

	if (nl == NOT_YET)
		return 0;
	if (nl == WINDOW_FULL) {
		if (frame_w <= cmd_w)
			return fail(p, STOMP_E_FRAME_TOO_LARGE, l->max_frame, " bytes");
		return fail(p, STOMP_E_COMMAND_TOO_LONG, l->max_command, " bytes");
	}
	end = line_end(b, 0, nl);
	if (end > l->max_command)
		return fail(p, STOMP_E_COMMAND_TOO_LONG, l->max_command, " bytes");
	p->cmd = stomp_cmd_lookup(b, end);
	if (p->cmd == STOMP_CMD_NONE && (!p->report_unknown || !is_command_word(b, end)))
		return fail(p, STOMP_E_UNKNOWN_COMMAND, 0, NULL);
	if (p->cmd == STOMP_CMD_NONE)
		p->cmd = STOMP_CMD_UNKNOWN;
	/* "Value Encoding": CONNECT and CONNECTED are never escaped; STOMP is CONNECT's
	 * other name and is sent before a version is agreed, so it is treated alike. */
	p->unescape = p->version != STOMP_V10 && p->cmd != STOMP_CMD_CONNECT &&
		      p->cmd != STOMP_CMD_STOMP && p->cmd != STOMP_CMD_CONNECTED;
	p->headers_start = nl + 1;
	p->line_start = nl + 1;
	p->scan_off = nl + 1;
	p->state = ST_HEADERS;
	return 1;
}

/*
 * Rewrites v in place to its unescaped copy in p->scratch, when it holds a '\'.
 * Value Encoding: \r (1.2 only) \n \c \\; anything else after '\' is a fatal error.
 */
static int unescape(struct stomp_parser *p, struct stomp_view *v)
{
	const char *s = v->ptr;
	const char *end = s + v->len;
	const char *bs = memchr(s, '\\', v->len);
	char *o = p->scratch + p->scratch_used;
	char *o_end = p->scratch + p->scratch_cap;
	char c;

	if (!bs)
		return 0;
	for (;;) {
		if ((size_t)(o_end - o) < (size_t)(bs - s) + 1)
			return fail(p, STOMP_E_SCRATCH_FULL, p->scratch_cap, " bytes");
		memcpy(o, s, (size_t)(bs - s));
		o += bs - s;
		if (bs + 1 == end)
			return fail_escape(p);
		c = bs[1];
		if (c == 'n')
			*o++ = '\n';
		else if (c == 'c')
			*o++ = ':';
		else if (c == '\\')
			*o++ = '\\';
		else if (c == 'r' && p->version >= STOMP_V12)
			*o++ = '\r';
		else
			return fail_escape(p);
		s = bs + 2;
		bs = memchr(s, '\\', (size_t)(end - s));
		if (!bs)
			break;
	}
	if ((size_t)(o_end - o) < (size_t)(end - s))
		return fail(p, STOMP_E_SCRATCH_FULL, p->scratch_cap, " bytes");
	memcpy(o, s, (size_t)(end - s));
	o += end - s;
	v->ptr = p->scratch + p->scratch_used;
	v->len = (size_t)(o - v->ptr);
	p->scratch_used = (size_t)(o - p->scratch);
	return 0;
}

/* "Header content-length": decimal octet count; a value over max_body, or one whose body
 * cannot fit in max_frame after this line (ending at nl), fails now, before the body. */
static int content_length(struct stomp_parser *p, struct stomp_view v, size_t nl)
{
	const struct stomp_limits *l = &p->limits;
	size_t cl = 0;

	if (v.len == 0)
		return fail(p, STOMP_E_BAD_CONTENT_LENGTH, 0, NULL);
	for (size_t i = 0; i < v.len; i++) {
		unsigned d = (unsigned char)v.ptr[i] - '0';

		if (d > 9)
			return fail(p, STOMP_E_BAD_CONTENT_LENGTH, 0, NULL);
		cl = cl > (SIZE_MAX - d) / 10 ? SIZE_MAX : cl * 10 + d;
	}
	if (cl > l->max_body)
		return fail(p, STOMP_E_BODY_TOO_LARGE, l->max_body, " bytes");
	/* at least: this line's LF, the blank line's LF, the body, the NUL */
	if (cl > l->max_frame || l->max_frame - cl < nl + 3)
		return fail(p, STOMP_E_FRAME_TOO_LARGE, l->max_frame, " bytes");
	p->content_length = cl;
	p->has_content_length = true;
	return 0;
}

/* One complete, non-empty header line b[start, end) whose LF is at nl. */
static int header_line(struct stomp_parser *p, const char *b, size_t start, size_t end,
		       size_t nl, struct stomp_frame *out)
{
	const char *line = b + start;
	size_t len = end - start;
	const char *colon;
	struct stomp_header *h;
	int err;

	if (len > p->limits.max_header_line)
		return fail(p, STOMP_E_HEADER_LINE_TOO_LONG, p->limits.max_header_line, " bytes");
	if (p->nheaders >= p->limits.max_headers)
		return fail(p, STOMP_E_TOO_MANY_HEADERS, p->limits.max_headers, "");
	/* A NUL ends a frame for every reader; passed on, it would split the MESSAGE a
	 * subscriber gets into a cut frame and a forged one. STOMP has no escape for it. */
	if (memchr(line, '\0', len))
		return fail(p, STOMP_E_NUL_IN_HEADER, 0, NULL);
	colon = memchr(line, ':', len);
	if (!colon || colon == line)
		return fail(p, STOMP_E_BAD_HEADER, 0, NULL);
	h = &out->headers[p->nheaders++];
	h->name.ptr = line;
	h->name.len = (size_t)(colon - line);
	h->value.ptr = colon + 1;
	h->value.len = len - h->name.len - 1;
	if (p->unescape && memchr(line, '\\', len)) {
		err = unescape(p, &h->name);
		if (!err)
			err = unescape(p, &h->value);
		if (err)
			return err;
	}
	/* "Repeated Header Entries": only the first content-length counts */
	if (!p->has_content_length && STOMP_VIEW_EQ_LIT(h->name, "content-length"))
		return content_length(p, h->value, nl);
	return 0;
}

/* Returns 1 once the blank line is seen (body_start set), 0 for more input, or an error. */
static int scan_headers(struct stomp_parser *p, const char *b, size_t n, struct stomp_frame *out)
{
	const struct stomp_limits *l = &p->limits;
	size_t frame_w = l->max_frame;
	size_t line_w;
	size_t nl;
	size_t end;
	int err;

	for (;;) {
		line_w = add_sat(p->line_start, add_sat(l->max_header_line, 2));
		nl = find_in_window(p, b, n, '\n', min_size(frame_w, line_w));
		if (nl == NOT_YET)
			return 0;
		if (nl == WINDOW_FULL) {
			if (frame_w <= line_w)
				return fail(p, STOMP_E_FRAME_TOO_LARGE, l->max_frame, " bytes");
			return fail(p, STOMP_E_HEADER_LINE_TOO_LONG, l->max_header_line, " bytes");
		}
		end = line_end(b, p->line_start, nl);
		if (end == p->line_start)
			break;
		err = header_line(p, b, p->line_start, end, nl, out);
		if (err)
			return err;
		p->line_start = nl + 1;
		p->scan_off = nl + 1;
	}
	p->body_start = nl + 1;
	p->scan_off = nl + 1;
	if (p->has_content_length && (p->content_length > l->max_frame ||
				      l->max_frame - p->content_length < p->body_start + 1))
		return fail(p, STOMP_E_FRAME_TOO_LARGE, l->max_frame, " bytes");
	p->state = ST_BODY;
	return 1;
}

/* Returns 1 once body and NUL are in (content_length set), 0 for more input, or an error. */
static int scan_body(struct stomp_parser *p, const char *b, size_t n)
{
	const struct stomp_limits *l = &p->limits;
	size_t nul;
	size_t frame_w;
	size_t body_w;

	if (p->has_content_length) {
		nul = p->body_start + p->content_length;	/* < max_frame: checked */
		if (n <= nul)
			return 0;
		if (b[nul] != '\0')
			return fail(p, STOMP_E_MISSING_NUL, 0, NULL);
		return 1;
	}
	frame_w = l->max_frame;
	body_w = add_sat(p->body_start, add_sat(l->max_body, 1));
	nul = find_in_window(p, b, n, '\0', min_size(frame_w, body_w));
	if (nul == NOT_YET)
		return 0;
	if (nul == WINDOW_FULL) {
		if (frame_w <= body_w)
			return fail(p, STOMP_E_FRAME_TOO_LARGE, l->max_frame, " bytes");
		return fail(p, STOMP_E_BODY_TOO_LARGE, l->max_body, " bytes");
	}
	p->content_length = nul - p->body_start;
	return 1;
}

/* Splits the header lines of a complete frame again, for a frame whose earlier calls
 * stored views into a buffer that may since have moved. Cannot fail: these same lines
 * passed every check before. */
static void refill_headers(struct stomp_parser *p, const char *b, struct stomp_frame *out)
{
	size_t start = p->headers_start;
	size_t stop = p->body_start;
	const char *nl;
	size_t end;

	p->nheaders = 0;
	p->scratch_used = 0;
	for (;;) {
		nl = memchr(b + start, '\n', stop - start);
		end = line_end(b, start, (size_t)(nl - b));
		if (end == start)
			return;
		(void)header_line(p, b, start, end, (size_t)(nl - b), out);
		start = (size_t)(nl - b) + 1;
	}
}

static void reset_scan(struct stomp_parser *p)
{
	p->state = ST_START;
	p->scan_off = 0;
	p->nheaders = 0;
	p->scratch_used = 0;
	p->has_content_length = false;
	p->content_length = 0;
}

/* Runs the states from wherever the last call stopped. b is the frame's first byte. */
static int scan_frame(struct stomp_parser *p, const char *b, size_t n, struct stomp_frame *out)
{
	int r;

	if (p->state == ST_COMMAND) {
		r = scan_command(p, b, n);
		if (r <= 0)
			return r;
	}
	if (p->state == ST_HEADERS) {
		r = scan_headers(p, b, n, out);
		if (r <= 0)
			return r;
	}
	return scan_body(p, b, n);
}

ssize_t stomp_parse(struct stomp_parser *p, const char *buf, size_t len, struct stomp_frame *out)
{
	size_t eols = 0;
	size_t start = 0;
	bool resumed = p->state != ST_START;
	int r;

	if (p->state == ST_FAILED)
		return p->err;
	if (!resumed) {
		start = skip_eols(buf, len, &eols);
		if (start == len || (start + 1 == len && buf[start] == '\r'))
			goto eols_only;
		p->state = ST_COMMAND;
		p->scan_off = 0;
	}
	r = scan_frame(p, buf + start, len - start, out);
	if (r < 0)
		return r;
	if (r == 0) {
		if (eols == 0)
			return 0;
		/* Heart-beats count now; the frame after them is scanned again next call,
		 * from its own start. */
		reset_scan(p);
		goto eols_only;
	}
	if (resumed)
		refill_headers(p, buf + start, out);
	out->cmd = p->cmd;
	out->heartbeats = eols > UINT32_MAX ? UINT32_MAX : (uint32_t)eols;
	out->nheaders = p->nheaders;
	out->has_content_length = p->has_content_length;
	out->body.ptr = buf + start + p->body_start;
	out->body.len = p->content_length;
	start += p->body_start + p->content_length + 1;
	reset_scan(p);
	return (ssize_t)start;

eols_only:
	if (eols == 0)
		return 0;
	out->cmd = STOMP_CMD_NONE;
	out->heartbeats = eols > UINT32_MAX ? UINT32_MAX : (uint32_t)eols;
	out->nheaders = 0;
	out->has_content_length = false;
	out->body.ptr = NULL;
	out->body.len = 0;
	return (ssize_t)start;
}

const struct stomp_view *stomp_frame_header(const struct stomp_frame *f, const char *name)
{
	size_t len = strlen(name);

	for (uint32_t i = 0; i < f->nheaders; i++) {
		if (stomp_view_eq(f->headers[i].name, name, len))
			return &f->headers[i].value;
	}
	return NULL;
}
