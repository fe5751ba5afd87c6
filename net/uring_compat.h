/*
 * net/uring_compat.h - io_uring feature checks in one place. Debian 12 ships liburing 2.3:
 * no io_uring_setup_buf_ring (2.4), so buffer rings are mmapped and registered by hand
 * (liburing's io_uring-udp.c example does the same).
 */
#ifndef NET_URING_COMPAT_H
#define NET_URING_COMPAT_H

#include <liburing.h>

#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

#endif
