/*
 * net/tcp_acked.c - how many bytes the peer of a TCP socket has acknowledged (TCP_INFO's
 * tcpi_bytes_acked, Linux 4.6+). Alone in its file because glibc's <netinet/tcp.h> lacks
 * the field and cannot be included together with <linux/tcp.h>, which has it.
 *
 * Thread: any (one getsockopt).
 */
#include "net/tcp_acked.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

int net_tcp_bytes_acked(int fd, uint64_t *out)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -errno;
	if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked))
		return -ENOTSUP;	/* a kernel older than 4.6 */
	*out = ti.tcpi_bytes_acked;
	return 0;
}
