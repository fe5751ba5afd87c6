/*
 * tools/ctl_user.h - `heraldctl user ...`: edits the users file the server reads
 * (auth/users.h, docs/auth.md). Works on the file only; the running server picks the change
 * up on SIGHUP.
 *
 *   heraldctl user add NAME [--tags a,b] [--vhosts /,prod] [--password-stdin]
 *   heraldctl user passwd NAME [--password-stdin]
 *   heraldctl user set NAME [--tags a,b] [--vhosts /,prod]
 *   heraldctl user remove NAME
 *   heraldctl user list
 *   every one: [--file PATH]   (default: $HERALD_USERS_FILE, else /etc/herald/users)
 *
 * Exit codes as heraldctl's: 0 done, 1 failed (file unreadable, invalid, user exists or
 * is missing), 2 usage error.
 */
#ifndef TOOLS_CTL_USER_H
#define TOOLS_CTL_USER_H

#define CTL_USER_DEFAULT_FILE "/etc/herald/users"

/* argv[0] is "user", argv[1] the verb. Returns the exit code. */
int ctl_user_main(int argc, char **argv);

#endif
