/*
 * tools/ctl_user.c - `heraldctl user add|passwd|set|remove|list`. Edits are line edits: the
 * file is parsed whole first (an invalid file is never rewritten, its error is shown), then
 * only the user's own line is added, replaced or dropped, so comments, order and the other
 * lines stay as they were. Writes go to a temporary file in the same directory, fsync'd and
 * renamed over the original (mode and owner kept; 0640 for a new file), with the directory
 * locked (flock) so two heraldctl runs cannot lose each other's change. Passwords come from
 * the terminal (twice, no echo) or from stdin with --password-stdin; they are hashed with
 * argon2id (libsodium's interactive cost) and wiped from memory afterwards.
 */
#include "tools/ctl_user.h"

#include "auth/users.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

struct user_opts {
	const char *verb;
	const char *name;
	const char *file;
	const char *tags;	/* NULL: not given */
	const char *vhosts;	/* NULL: not given */
	bool password_stdin;
	char hash[USERS_HASH_MAX + 1];	/* add, passwd: the new password's hash */
};

/* The users file while we edit it: its text, parsed, with its directory locked. */
struct users_file {
	const char *path;
	bool exists;
	struct stat st;
	char *text;
	size_t len;
	int dir_fd;
	struct users_table *t;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: heraldctl user <verb> [NAME] [options]\n\n"
		"verbs:\n"
		"  add NAME     add a user (password asked twice, or --password-stdin)\n"
		"  passwd NAME  set a user's password\n"
		"  set NAME     change a user's --tags and/or --vhosts\n"
		"  remove NAME  remove a user\n"
		"  list         list users with their tags and virtual hosts\n\n"
		"options:\n"
		"  --file PATH       users file (default $HERALD_USERS_FILE, else %s)\n"
		"  --tags a,b        tags: administrator (everything), service (may send to any\n"
		"                    destination), or your own for rules files; \"\" for none\n"
		"  --vhosts /,prod   virtual hosts the user may connect to; * for all (default /)\n"
		"  --password-stdin  read the password from standard input (one line)\n\n"
		"The server reads the file at start and on SIGHUP. Format: docs/auth.md\n",
		CTL_USER_DEFAULT_FILE);
}

/* ---- the file ---- */

static int dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return snprintf(out, cap, ".") < (int)cap ? 0 : -1;
	if (slash == path)
		return snprintf(out, cap, "/") < (int)cap ? 0 : -1;
	return snprintf(out, cap, "%.*s", (int)(slash - path), path) < (int)cap ? 0 : -1;
}

static int read_text(struct users_file *f)
{
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &f->st) || !S_ISREG(f->st.st_mode) ||
	    (uint64_t)f->st.st_size > USERS_FILE_MAX) {
		close(fd);
		return -EINVAL;
	}
	f->exists = true;
	f->text = malloc((size_t)f->st.st_size + 1);
	while (f->text && got < (size_t)f->st.st_size) {
		ssize_t r = read(fd, f->text + got, (size_t)f->st.st_size - got);

		if (r <= 0 && !(r < 0 && errno == EINTR))
			break;
		got += r > 0 ? (size_t)r : 0;
	}
	close(fd);
	if (!f->text || got != (size_t)f->st.st_size)
		return -EIO;
	f->len = got;
	return 0;
}

/* Locks the directory, reads and parses the file. A missing file is empty. */
static int file_open(struct users_file *f, const char *path)
{
	char dir[4096];
	struct users_error err = { 0 };
	int rc;

	memset(f, 0, sizeof(*f));
	f->path = path;
	f->dir_fd = -1;
	if (dir_of(path, dir, sizeof(dir)))
		return fprintf(stderr, "heraldctl: path too long\n"), -1;
	f->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dir_fd < 0 || flock(f->dir_fd, LOCK_EX)) {
		fprintf(stderr, "heraldctl: cannot open directory %s: %s\n", dir, strerror(errno));
		return -1;
	}
	rc = read_text(f);
	if (rc) {
		fprintf(stderr, "heraldctl: cannot read %s: %s\n", path,
			rc == -EINVAL ? "not a regular file of at most 64 MiB" : strerror(-rc));
		return -1;
	}
	f->t = users_table_create();
	if (users_table_parse(f->t, f->text ? f->text : "", f->len, &err)) {
		fprintf(stderr, "heraldctl: %s line %u: %s (fix the file first)\n", path, err.line,
			err.msg);
		return -1;
	}
	return 0;
}

static void file_close(struct users_file *f)
{
	users_table_destroy(f->t);
	free(f->text);
	if (f->dir_fd >= 0)
		close(f->dir_fd);	/* releases the lock */
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Writes the file's text with line `line` (1-based; 0: none) replaced by `repl` (NULL:
 * dropped) and `append` (NULL: nothing) added at the end, then renames it into place. */
static int file_rewrite(struct users_file *f, uint32_t line, const char *repl, const char *append)
{
	size_t tmp_len = strlen(f->path) + 16;
	char *tmp = malloc(tmp_len);
	uint32_t n = 0;
	size_t i = 0;
	int fd;
	int ok;

	snprintf(tmp, tmp_len, "%s.tmp.XXXXXX", f->path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		fprintf(stderr, "heraldctl: cannot create %s: %s\n", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	ok = fchmod(fd, f->exists ? f->st.st_mode & 07777 : 0640) == 0;
	/* as root, keep the owner (e.g. root:herald); otherwise it stays ours, all we can do */
	if (f->exists)
		(void)!fchown(fd, f->st.st_uid, f->st.st_gid);
	while (ok && i < f->len) {
		const char *nl = memchr(f->text + i, '\n', f->len - i);
		size_t end = nl ? (size_t)(nl - f->text) + 1 : f->len;

		if (++n == line)
			ok = !repl || !write_all(fd, repl, strlen(repl));
		else
			ok = !write_all(fd, f->text + i, end - i);
		if (ok && !nl && n != line)
			ok = !write_all(fd, "\n", 1);	/* the last line gains its newline */
		i = end;
	}
	if (ok && append)
		ok = !write_all(fd, append, strlen(append));
	ok = ok && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	ok = ok && rename(tmp, f->path) == 0;
	if (!ok) {
		fprintf(stderr, "heraldctl: cannot write %s: %s\n", f->path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	if (ok)
		fsync(f->dir_fd);	/* the rename itself survives a crash */
	return ok ? 0 : -1;
}

/* ---- passwords ---- */

/* One line of at most USERS_PASSWORD_MAX bytes from fd, its newline (and a CR) dropped. */
static int read_line(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || c == '\n')
			break;
		if (n + 1 >= cap)
			return -1;
		buf[n++] = c;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	return 0;
}

static int prompt(int tty, const char *text, char *buf, size_t cap, size_t *len)
{
	struct termios old;
	struct termios quiet;
	int rc;

	if (tcgetattr(tty, &old))
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	if (write_all(tty, text, strlen(text)) || tcsetattr(tty, TCSAFLUSH, &quiet))
		return -1;
	rc = read_line(tty, buf, cap, len);
	tcsetattr(tty, TCSAFLUSH, &old);
	(void)!write(tty, "\n", 1);
	return rc;
}

/* The new password into buf (cap > USERS_PASSWORD_MAX). Returns 0 or -1 after a message. */
static int get_password(bool from_stdin, char *buf, size_t cap, size_t *len)
{
	char again[USERS_PASSWORD_MAX + 2];
	size_t again_len = 0;
	int tty;
	int rc = -1;

	if (from_stdin) {
		if (read_line(STDIN_FILENO, buf, cap, len) || *len == 0) {
			fprintf(stderr, "heraldctl: the password on stdin is empty or over %d bytes\n",
				USERS_PASSWORD_MAX);
			return -1;
		}
		return 0;
	}
	tty = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (tty < 0) {
		fprintf(stderr, "heraldctl: no terminal to ask for the password: use "
				"--password-stdin\n");
		return -1;
	}
	if (prompt(tty, "Password: ", buf, cap, len) ||
	    prompt(tty, "Password again: ", again, sizeof(again), &again_len))
		fprintf(stderr, "heraldctl: cannot read the password from the terminal\n");
	else if (*len == 0)
		fprintf(stderr, "heraldctl: empty password\n");
	else if (*len != again_len || sodium_memcmp(buf, again, *len))
		fprintf(stderr, "heraldctl: the passwords differ\n");
	else
		rc = 0;
	sodium_memzero(again, sizeof(again));
	close(tty);
	return rc;
}

/* ---- commands ---- */

static int check_list(const char *what, const char *in, bool vhosts, char *out, size_t cap)
{
	const char *why = "";

	if (users_normalize_list(in, strlen(in), vhosts, out, cap, &why) < 0) {
		fprintf(stderr, "heraldctl: --%s %s: %s\n", what, in, why);
		return -1;
	}
	return 0;
}

/* Writes e's line with a fresh hash (or the old one when hash is NULL). */
static int store(struct users_file *f, const struct users_entry *e, uint32_t line)
{
	char text[USERS_LINE_MAX + 2];
	int n = users_format_line(e, text, sizeof(text));

	if (n < 0 || n > USERS_LINE_MAX + 1) {
		fprintf(stderr, "heraldctl: the line for '%s' would be too long\n", e->name);
		return -1;
	}
	return file_rewrite(f, line, text, line ? NULL : text);
}

static int hash_new_password(struct user_opts *o)
{
	char pass[USERS_PASSWORD_MAX + 2];
	size_t len = 0;
	int rc = get_password(o->password_stdin, pass, sizeof(pass), &len);

	if (!rc && users_hash_password(pass, len, USERS_COST_INTERACTIVE, o->hash)) {
		fprintf(stderr, "heraldctl: hashing failed (out of memory?)\n");
		rc = -1;
	}
	sodium_memzero(pass, sizeof(pass));
	return rc;
}

static bool absent(struct users_file *f, const char *name)
{
	if (!users_table_find(f->t, name, strlen(name)))
		return true;
	fprintf(stderr, "heraldctl: user '%s' already exists (use passwd or set)\n", name);
	return false;
}

static int cmd_add(struct users_file *f, const struct user_opts *o)
{
	char tags[USERS_LINE_MAX];
	char vhosts[USERS_LINE_MAX];
	struct users_entry e = { .name = o->name, .hash = o->hash, .tags = tags, .vhosts = vhosts };

	if (!absent(f, o->name))
		return 1;
	if (check_list("tags", o->tags ? o->tags : "", false, tags, sizeof(tags)) ||
	    check_list("vhosts", o->vhosts && o->vhosts[0] ? o->vhosts : "/", true, vhosts,
		       sizeof(vhosts)))
		return 2;
	if (store(f, &e, 0))
		return 1;
	printf("added user '%s' to %s (send SIGHUP to herald to apply)\n", o->name, f->path);
	return 0;
}

static const struct users_entry *existing(struct users_file *f, const char *name)
{
	const struct users_entry *e = users_table_find(f->t, name, strlen(name));

	if (!e)
		fprintf(stderr, "heraldctl: no user '%s' in %s\n", name, f->path);
	return e;
}

static int cmd_passwd(struct users_file *f, const struct user_opts *o)
{
	const struct users_entry *old = existing(f, o->name);
	struct users_entry e;

	if (!old)
		return 1;
	e = *old;
	e.hash = o->hash;
	if (store(f, &e, old->line))
		return 1;
	printf("changed the password of '%s' in %s (send SIGHUP to herald to apply)\n", o->name,
	       f->path);
	return 0;
}

static int cmd_set(struct users_file *f, const struct user_opts *o)
{
	const struct users_entry *old = existing(f, o->name);
	char tags[USERS_LINE_MAX];
	char vhosts[USERS_LINE_MAX];
	struct users_entry e;

	if (!old)
		return 1;
	if (!o->tags && !o->vhosts) {
		fprintf(stderr, "heraldctl: user set wants --tags and/or --vhosts\n");
		return 2;
	}
	e = *old;
	if (o->tags && check_list("tags", o->tags, false, tags, sizeof(tags)))
		return 2;
	if (o->vhosts && check_list("vhosts", o->vhosts[0] ? o->vhosts : "/", true, vhosts,
				    sizeof(vhosts)))
		return 2;
	if (o->tags)
		e.tags = tags;
	if (o->vhosts)
		e.vhosts = vhosts;
	if (store(f, &e, old->line))
		return 1;
	printf("updated user '%s' in %s (send SIGHUP to herald to apply)\n", o->name, f->path);
	return 0;
}

static int cmd_remove(struct users_file *f, const struct user_opts *o)
{
	const struct users_entry *e = existing(f, o->name);

	if (!e || file_rewrite(f, e->line, NULL, NULL))
		return 1;
	printf("removed user '%s' from %s (send SIGHUP to herald to apply; open connections "
	       "stay until they close)\n", o->name, f->path);
	return 0;
}

static int cmd_list(struct users_file *f, const struct user_opts *o)
{
	size_t n = users_table_count(f->t);

	(void)o;
	if (n == 0) {
		printf("no users in %s\n", f->path);
		return 0;
	}
	printf("%-32s %-32s %s\n", "NAME", "TAGS", "VHOSTS");
	for (size_t i = 0; i < n; i++) {
		const struct users_entry *e = users_table_at(f->t, i);

		printf("%-32s %-32s %s\n", e->name, e->tags[0] ? e->tags : "-", e->vhosts);
	}
	return 0;
}

static const struct {
	const char *verb;
	bool takes_name;
	bool password;			/* asks for a new password */
	int (*run)(struct users_file *f, const struct user_opts *o);
} verbs[] = {
	{ "add", true, true, cmd_add },
	{ "passwd", true, true, cmd_passwd },
	{ "set", true, false, cmd_set },
	{ "remove", true, false, cmd_remove },
	{ "list", false, false, cmd_list },
};

/* Lists are checked before anything is read or asked. */
static int check_lists(const struct user_opts *o)
{
	char buf[USERS_LINE_MAX];

	if (o->tags && check_list("tags", o->tags, false, buf, sizeof(buf)))
		return -1;
	if (o->vhosts && o->vhosts[0] && check_list("vhosts", o->vhosts, true, buf, sizeof(buf)))
		return -1;
	return 0;
}

/* The password is asked for without holding the lock (a person may take a while): look
 * first, ask and hash, then the verb runs on the file re-read under the lock. */
static int ask_password(struct user_opts *o, bool adding)
{
	struct users_file f;
	int rc = file_open(&f, o->file);

	if (!rc)
		rc = adding ? !absent(&f, o->name) : !existing(&f, o->name);
	file_close(&f);
	return rc || hash_new_password(o) ? 1 : 0;
}

/* argv[0] is "user"; options may sit anywhere (getopt permutes), then VERB [NAME]. */
static int parse_args(int argc, char **argv, struct user_opts *o)
{
	static const struct option longopts[] = {
		{ "file", required_argument, NULL, 'f' },
		{ "tags", required_argument, NULL, 't' },
		{ "vhosts", required_argument, NULL, 'v' },
		{ "password-stdin", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 0;	/* GNU getopt: start over (heraldctl's main may have used it) */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'f')
			o->file = optarg;
		else if (c == 't')
			o->tags = optarg;
		else if (c == 'v')
			o->vhosts = optarg;
		else if (c == 's')
			o->password_stdin = true;
		else if (c == 'h')
			return 1;
		else
			return fprintf(stderr, "heraldctl: bad option %s\n", argv[optind - 1]), -1;
	}
	if (optind < argc)
		o->verb = argv[optind++];
	if (optind < argc)
		o->name = argv[optind++];
	return o->verb && optind == argc ? 0 : -1;
}

int ctl_user_main(int argc, char **argv)
{
	struct user_opts o = { 0 };
	struct users_file f;
	int rc;

	rc = parse_args(argc, argv, &o);
	if (rc) {
		usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : 2;
	}
	if (!o.file)
		o.file = getenv("HERALD_USERS_FILE") && getenv("HERALD_USERS_FILE")[0]
				 ? getenv("HERALD_USERS_FILE")
				 : CTL_USER_DEFAULT_FILE;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(o.verb, verbs[i].verb))
			continue;
		if (verbs[i].takes_name != (o.name != NULL)) {
			usage(stderr);
			return 2;
		}
		if (o.name && !users_name_is_valid(o.name, strlen(o.name))) {
			fprintf(stderr, "heraldctl: invalid user name '%s' (1-63 of A-Z a-z 0-9 . _ "
					"@ + -, not starting with - or .)\n", o.name);
			return 2;
		}
		if (check_lists(&o))
			return 2;
		if (verbs[i].password && ask_password(&o, verbs[i].run == cmd_add))
			return 1;
		rc = file_open(&f, o.file) ? 1 : verbs[i].run(&f, &o);
		file_close(&f);
		sodium_memzero(o.hash, sizeof(o.hash));
		return rc;
	}
	fprintf(stderr, "heraldctl: unknown verb 'user %s'\n", o.verb);
	usage(stderr);
	return 2;
}
