// SPDX-License-Identifier: MIT
/*
 * kmperf-boost.cpp - kmperf's boost.interprocess peer: one process of several
 * that allocate and deallocate on one managed_shared_memory segment (the
 * default rbtree_best_fit algorithm with its process-shared mutex), serving
 * kmperf's runs on stdin/stdout (workload.h).
 *
 * Usage: kmperf-boost SEGMENT SIZE_MB   (opened, or created, in /dev/shm; the
 * driver removes it)
 */
#include <boost/interprocess/managed_shared_memory.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <unistd.h>

#include "workload.h"

namespace bip = boost::interprocess;

static void *seg_alloc(void *ctx, size_t size)
{
	void *p = static_cast<bip::managed_shared_memory *>(ctx)->allocate(size, std::nothrow);

	if (!p)
		errno = ENOMEM;
	return p;
}

static void seg_free(void *ctx, void *p)
{
	static_cast<bip::managed_shared_memory *>(ctx)->deallocate(p);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: kmperf-boost SEGMENT SIZE_MB\n");
		return 2;
	}
	try {
		bip::managed_shared_memory seg(bip::open_or_create, argv[1],
					       std::strtoul(argv[2], nullptr, 10) << 20);
		struct wl_alloc a = {};

		a.name = "boost.interprocess";
		a.alloc = seg_alloc;
		a.free = seg_free;
		a.ctx = &seg;
		return wl_serve(&a, STDIN_FILENO, STDOUT_FILENO) < 0 ? 1 : 0;
	} catch (const std::exception &e) {
		std::printf("error boost.interprocess: %s\n", e.what());
		return 1;
	}
}
