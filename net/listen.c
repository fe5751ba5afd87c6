/*
 * net/listen.c - SO_REUSEPORT listeners: each shard accepts on its own socket of the group.
 */
#include "net/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int sock_set_int(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val)) ? -errno : 0;
}

int net_listen_open(const char *addr, uint16_t port, int backlog, uint16_t *bound_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sa);
	int fd, err;

	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	err = sock_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
	if (!err)
		err = sock_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
	if (err)
		goto err_close_fd;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, backlog)) {
		err = -errno;
		goto err_close_fd;
	}
	if (getsockname(fd, (struct sockaddr *)&sa, &len)) {
		err = -errno;
		goto err_close_fd;
	}
	*bound_port = ntohs(sa.sin_port);
	return fd;

err_close_fd:
	close(fd);
	return err;
}
