# Herald's container image: docker build -t herald .
# How to run it (ports, --ulimit nofile, which io backend runs under which seccomp profile):
# the README's "Running in a container".

# --- build stage: exactly what tools/container-build.sh does on a Debian 12 host, which CI
# (tools/dev.sh test) runs too, so this recipe is exercised where no container engine runs.
FROM debian:12 AS build
WORKDIR /src
# The build packages first, from the package list alone: this layer stays cached while only
# the sources change.
COPY tools/packages.sh tools/container-build.sh tools/
RUN bash tools/container-build.sh --packages
COPY . .
# Release build, no tests, installed in /opt/herald/bin; the script then checks the
# runtime package list against ldd and starts the installed server once on loopback.
RUN bash tools/container-build.sh /build /opt/herald

# --- runtime stage: the binaries and the shared libraries they link, nothing else
FROM debian:12-slim
# The same list the build script checked against ldd (liburing2 libxxhash0 libjemalloc2
# libssl3 libsodium23 libinih1); --no-install-recommends keeps it to those and their Depends.
COPY tools/packages.sh /tmp/packages.sh
RUN . /tmp/packages.sh \
	&& apt-get update \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		$herald_runtime_pkgs \
	&& rm -rf /var/lib/apt/lists/* /tmp/packages.sh
# Herald needs no privilege (every port is above 1024, it writes no files). A fixed numeric
# id, above the host's login users, so Kubernetes' runAsNonRoot can verify it and files
# mounted in (users file, keys) can be given to it with chown 10001.
RUN useradd --user-group --uid 10001 --no-create-home --home-dir /nonexistent \
	--shell /usr/sbin/nologin herald
COPY --from=build /opt/herald/bin/ /usr/local/bin/
USER 10001:10001

# STOMP, WebSocket (and the demo page), gossip (UDP and TCP), admin HTTP. The admin
# endpoint binds 127.0.0.1 by default (open to loopback clients): publishing 15672 needs
# --admin-bind 0.0.0.0 too, and then an administrator's credentials, which heraldctl (and
# so the HEALTHCHECK) takes from HERALD_ADMIN_USER / HERALD_ADMIN_PASSWORD (docker run -e).
EXPOSE 61613 15674 7946/tcp 7946/udp 15672
# heraldctl asks the admin endpoint on 127.0.0.1:15672 from inside the container, so no
# curl is needed. It answers while the cluster layer runs: with --cluster false or another
# --admin-port, run the container with --no-healthcheck (or --health-cmd).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
	CMD ["heraldctl", "--timeout", "3000", "cluster", "status"]

# herald is PID 1: it waits for SIGTERM/SIGINT itself (sigwait), so `docker stop` stops it
# gracefully (it leaves the cluster first) without --init.
ENTRYPOINT ["herald"]
# The embedded default, spelled out: client listeners on every interface of the container.
# Any arguments after the image name replace this line (the defaults stay the same), e.g.
# `docker run herald --config /etc/herald/herald.ini`.
CMD ["--bind", "0.0.0.0"]
