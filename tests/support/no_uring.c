/*
 * tests/support/no_uring.c - `no-uring PROGRAM [ARGS...]`: runs PROGRAM with io_uring blocked
 * for that process (and its children) only, not for the machine.
 *
 * Installs a seccomp filter that makes io_uring_setup, io_uring_enter and io_uring_register
 * fail with EPERM and allows every other system call, then execs PROGRAM. That is what
 * Docker's default seccomp profile (and Kubernetes' RuntimeDefault) does to io_uring, so the
 * integration tests use it to check that `herald --io auto` falls back to epoll and that
 * `--io io_uring` fails with an error saying why (issue 15). No privileges needed: the filter
 * is allowed because no_new_privs is set first. Exits 127 when PROGRAM cannot be run,
 * 125 when the filter cannot be installed, 2 on bad usage.
 */

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static const int blocked[] = {
	SCMP_SYS(io_uring_setup),
	SCMP_SYS(io_uring_enter),
	SCMP_SYS(io_uring_register),
};

/* Returns 0 or a negative errno; the filter stays in force across execve. */
static int block_io_uring(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int err;

	/* seccomp(2) refuses an unprivileged filter unless no_new_privs is set */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	for (i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), blocked[i], 0);
		if (err)
			goto out_release;
	}
	err = seccomp_load(ctx);

out_release:
	seccomp_release(ctx);
	return err;
}

int main(int argc, char **argv)
{
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: no-uring PROGRAM [ARGS...]\n");
		return 2;
	}
	err = block_io_uring();
	if (err) {
		fprintf(stderr, "no-uring: cannot install the seccomp filter: %s\n", strerror(-err));
		return 125;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "no-uring: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
