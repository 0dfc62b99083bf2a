// SPDX-License-Identifier: MIT
/*
 * kmperf-dpdk.c - kmperf's DPDK peer: rte_malloc/rte_free in secondary
 * processes attached to one primary, serving kmperf's runs on stdin/stdout
 * (workload.h).
 *
 * Usage: kmperf-dpdk primary EAL-ARGS...   rte_eal_init as the primary, say
 *                                           "ready", wait for "quit" or EOF
 *        kmperf-dpdk worker EAL-ARGS...    (with --proc-type=secondary)
 *                                           serve runs with rte_malloc
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "workload.h"

static void *dpdk_alloc(void *ctx, size_t size)
{
	void *p = rte_malloc(NULL, size, 0);

	if (!p)
		errno = ENOMEM;
	return p;
}

static void dpdk_free(void *ctx, void *p)
{
	rte_free(p);
}

static int primary_wait(void)
{
	char line[64];

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		if (strncmp(line, "quit", 4) == 0)
			break;
	return 0;
}

int main(int argc, char **argv)
{
	struct wl_alloc a = {
		.name = "DPDK rte_malloc",
		.alloc = dpdk_alloc,
		.free = dpdk_free,
	};
	bool primary;
	int ret;

	if (argc < 2 || (strcmp(argv[1], "primary") && strcmp(argv[1], "worker"))) {
		fprintf(stderr, "usage: kmperf-dpdk primary|worker EAL-ARGS...\n");
		return 2;
	}
	primary = strcmp(argv[1], "primary") == 0;
	/* rte_eal_init takes argv[0] as the program name. */
	argv[1] = argv[0];
	if (rte_eal_init(argc - 1, argv + 1) < 0) {
		printf("error rte_eal_init: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	if (primary)
		ret = primary_wait();
	else
		ret = wl_serve(&a, STDIN_FILENO, STDOUT_FILENO) < 0 ? 1 : 0;
	rte_eal_cleanup();
	return ret;
}
