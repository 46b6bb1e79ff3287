/*
 * uv_peer.h - the modes of the libuv peer (peer_uv) kept outside
 * peer_uv.c.
 */
#ifndef BENCH_UV_PEER_H
#define BENCH_UV_PEER_H

#include "common.h"

void uv_jobs(const struct bench_args *a); /* uv_jobs.c */

#endif
