# shellcheck shell=sh disable=SC2034
# tools/packages.sh - the Debian 12 packages Herald builds with and runs with, one list each.
# Sourced by tools/dev.sh, tools/container-build.sh and the Dockerfile's runtime stage, so
# it is plain POSIX sh: two space-separated strings, nothing else.

# to build herald and heraldctl (and, with the test packages in dev.sh, the tests)
herald_build_pkgs="build-essential cmake pkg-config clang liburing-dev libxxhash-dev \
	libjemalloc-dev libcriterion-dev libssl-dev libsodium-dev libinih-dev libraft-dev libuv1-dev"
# to run them: the libraries the installed binaries link (libcrypto.so.3 is in libssl3);
# tools/container-build.sh checks this list against ldd, so a new link dependency fails CI
herald_runtime_pkgs="liburing2 libxxhash0 libjemalloc2 libssl3 libsodium23 libinih1 libraft2 libuv1"
