// SPDX-License-Identifier: MIT
/*
 * perf-vmalloc.c - figure 5: km_vmalloc of 64 MiB + one write per 4 KiB page
 * + km_vfree, the whole cycle timed, against its floor: a memfd of the pool's
 * backing (MFD_HUGETLB on a hugetlb pool) fallocated once beforehand, then
 * per call mmap(MAP_SHARED | MAP_POPULATE) + the same writes + munmap. The
 * calls alternate between the two, so that the host's noise hits both alike;
 * median and worst are compared. (kmbench times the broker's buffer without
 * its free, against memfds made from scratch.)
 */
#include "config.h"
#include "kmperf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kmclient.h"

static void touch(char *p, size_t size)
{
	for (size_t off = 0; off < size; off += SZ_4K)
		((volatile char *)p)[off] = (char)(off >> 12);
}

static double broker_call(km_client *c)
{
	uint64_t t0 = now_ns();
	char *p = km_vmalloc(c, SZ_64M);

	if (!p)
		return -1;
	touch(p, SZ_64M);
	km_vfree(c, p);
	return (double)(now_ns() - t0) / 1e3;
}

static double floor_call(int fd)
{
	uint64_t t0 = now_ns();
	char *p = mmap(NULL, SZ_64M, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);

	if (p == MAP_FAILED)
		return -1;
	touch(p, SZ_64M);
	munmap(p, SZ_64M);
	return (double)(now_ns() - t0) / 1e3;
}

/* The floor's memfd, populated; -1 with errno. */
static int floor_memfd(bool huge)
{
	int fd =
		memfd_create("kmperf-floor", MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0));

	if (fd < 0)
		return -1;
	if (fallocate(fd, 0, 0, (off_t)SZ_64M) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Median against median, worst against worst; the target is for a hugetlb pool. */
static void vmalloc_rows(const struct series *b, const struct series *f)
{
	const char *backing = dmn.hugetlb ? "hugetlb" : "shmem", *na = NULL;
	char base[96], t1[32], t2[32], measure[128];

	if (!dmn.hugetlb)
		na = dmn.backing_note[0] ? dmn.backing_note : "the pool is not hugetlb";
	fmt_value(t1, sizeof(t1), series_median(f), "us");
	snprintf(base, sizeof(base), "%s floor %s", backing, t1);
	snprintf(measure, sizeof(measure), "vmalloc 64 MiB + touch + vfree, median of %u",
		 opt.vmalloc_calls);
	row_add(&(struct row_spec){ .fig = 5,
				    .measure = measure,
				    .value = series_median(b),
				    .unit = "us",
				    .base_text = base,
				    .base = series_median(f),
				    .cmp = CMP_LE,
				    .target = 1.2,
				    .na = na });
	fmt_value(t1, sizeof(t1), series_max(f), "us");
	fmt_value(t2, sizeof(t2), series_quantile(b, 0.9), "us");
	snprintf(base, sizeof(base), "%s floor worst %s", backing, t1);
	snprintf(measure, sizeof(measure), "vmalloc 64 MiB + touch + vfree, worst (p90 %s)", t2);
	row_add(&(struct row_spec){ .fig = 5,
				    .measure = measure,
				    .value = series_max(b),
				    .unit = "us",
				    .base_text = base,
				    .base = series_max(f),
				    .cmp = CMP_LE,
				    .target = 1.2,
				    .na = na });
	note_add("figure 5: broker and floor calls alternate; the worst broker call is compared "
		 "with the worst floor call, which the same noise of the host can hit");
}

void fig_vmalloc(void)
{
	const char *backing = dmn.hugetlb ? "hugetlb" : "shmem";
	struct series b, f;
	km_client *c;
	int fd;

	progress("figure 5: vmalloc 64 MiB, %u calls each", opt.vmalloc_calls);
	if (dmn.hugetlb)
		hugepages_ensure_free((long)(SZ_64M / SZ_2M), opt.hugepages);
	fd = floor_memfd(dmn.hugetlb);
	if (fd < 0) {
		row_na(5, "vmalloc 64 MiB + touch + vfree", "the %s floor memfd: %s", backing,
		       strerror(errno));
		return;
	}
	c = km_connect(opt.socket);
	if (!c)
		fail("km_connect(%s): %s", opt.socket, strerror(errno));
	series_init(&b, "broker", "us", opt.vmalloc_calls);
	series_init(&f, "floor", "us", opt.vmalloc_calls);
	for (int i = 0; i < 3; i++) {
		broker_call(c);
		floor_call(fd);
	}
	for (unsigned int i = 0; i < opt.vmalloc_calls; i++) {
		double x = broker_call(c), y = floor_call(fd);

		if (x < 0 || y < 0) {
			row_na(5, "vmalloc 64 MiB + touch + vfree", "%s failed: %s",
			       x < 0 ? "km_vmalloc(64 MiB)" : "the floor's mmap", strerror(errno));
			goto out;
		}
		b.v[b.n++] = x;
		f.v[f.n++] = y;
	}
	vmalloc_rows(&b, &f);
out:
	series_free(&b);
	series_free(&f);
	km_disconnect(c);
	close(fd);
}
