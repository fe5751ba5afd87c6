/*
 * tests/unit/core/test_config.c - core/config.c: the INI file under the flags, and what a
 * SIGHUP reload compares and takes (docs/operations.md "Reloading the configuration").
 */
#include "core/config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char ini_path[64];

static void write_ini(const char *text)
{
	FILE *f;

	snprintf(ini_path, sizeof(ini_path), "/tmp/herald-test-config-%d.ini", (int)getpid());
	f = fopen(ini_path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
}

static void cleanup(void)
{
	if (ini_path[0])
		unlink(ini_path);
}

static int load(struct herald_config *cfg, const char *ini, const char *flag, const char *val)
{
	char *argv[] = { "herald", "--config", ini_path, (char *)flag, (char *)val, NULL };

	write_ini(ini);
	config_defaults(cfg);
	return config_load(cfg, NULL, flag ? 5 : 3, argv);
}

#define MAX_SEEN 16
struct seen {
	const char *name[MAX_SEEN];
	bool runtime[MAX_SEEN];
	int n;
};

static void record(void *arg, const struct config_option *o, const void *a, const void *b)
{
	struct seen *s = arg;

	(void)a;
	(void)b;
	cr_assert_lt(s->n, MAX_SEEN);
	s->name[s->n] = o->name;
	s->runtime[s->n++] = config_option_is_runtime(o);
}

TestSuite(config, .fini = cleanup);

Test(config, flags_win_over_the_file)
{
	static struct herald_config cfg;

	cr_assert_eq(load(&cfg, "max-body-bytes = 1000\n", "--max-body-bytes", "2000"), 0);
	cr_assert_eq(cfg.limits.max_body_bytes, 2000);
}

Test(config, a_bad_line_fails_the_load)
{
	static struct herald_config cfg;

	cr_assert_eq(load(&cfg, "max-body-bytes = ten\n", NULL, NULL), -1);
	cr_assert_eq(load(&cfg, "no-such-setting = 1\n", NULL, NULL), -1);
}

Test(config, each_change_names_every_changed_setting_and_whether_it_applies_at_run_time)
{
	static struct herald_config a, b;
	struct seen s = { 0 };

	cr_assert_eq(load(&a, "max-body-bytes = 1000\nshards = 1\nlog-level = info\n", NULL, NULL), 0);
	cr_assert_eq(load(&b, "max-body-bytes = 500\nshards = 2\nlog-level = warn\n"
			      "users-file = /x\nstomp-port = 1\n", NULL, NULL), 0);
	config_each_change(&a, NULL, &b, NULL, record, &s);
	cr_assert_eq(s.n, 5);
	for (int i = 0; i < s.n; i++) {
		bool runtime = !strcmp(s.name[i], "max-body-bytes") ||
			       !strcmp(s.name[i], "log-level") || !strcmp(s.name[i], "users-file");

		cr_assert_eq(s.runtime[i], runtime, "%s", s.name[i]);
	}
}

Test(config, take_runtime_copies_limits_log_level_and_users_only)
{
	static struct herald_config a, b;

	cr_assert_eq(load(&a, "shards = 1\n", NULL, NULL), 0);
	cr_assert_eq(load(&b, "shards = 4\nmax-connections = 7\nlog-level = error\n"
			      "user = kim:pw\nws-path = /x\n", NULL, NULL), 0);
	config_take_runtime(&a, &b);
	cr_assert_eq(a.limits.max_connections, 7);
	cr_assert_eq(a.log_level, b.log_level);
	cr_assert_eq(a.nusers, 1);
	cr_assert_str_eq(a.users[0], "kim:pw");
	cr_assert_eq(a.shards, 1);
	cr_assert_str_eq(a.ws_path, "/ws");
}

static char formatted[2][32];
static int nformatted;

static void format_new(void *arg, const struct config_option *o, const void *a, const void *b)
{
	char buf[32];
	const char *v = config_format_value(o, b, buf, sizeof(buf));

	(void)arg;
	(void)a;
	snprintf(formatted[nformatted++ % 2], sizeof(formatted[0]), "%s=%s", o->name,
		 v ? v : "(not shown)");
}

Test(config, values_are_formatted_for_the_log_but_strings_never)
{
	static struct herald_config cfg, defaults;

	cr_assert_eq(load(&cfg, "default-pass = secret\nmax-headers = 9\n", NULL, NULL), 0);
	config_defaults(&defaults);
	config_each_change(&defaults, NULL, &cfg, NULL, format_new, NULL);
	cr_assert_eq(nformatted, 2);
	cr_assert_str_eq(formatted[0], "default-pass=(not shown)");
	cr_assert_str_eq(formatted[1], "max-headers=9");
}
