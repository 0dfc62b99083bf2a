// SPDX-License-Identifier: MIT
/*
 * test-loopstat.c - timing what holds the event loop (daemon/loopstat.c):
 * durations land in the right bucket on both sides of every bound, "over
 * 1 ms" means longer than 1 ms, the worst request keeps its duration and its
 * kind (a tie keeps the first), teardown turns, ticks and accepts keep their
 * maxima, and a real sleep measured with the module's clock is counted as
 * what it was. Then the real dispatcher and connection teardown on a server
 * in this process (server_init_unlisted() over a socketpair): every request
 * sent is counted once under its kind, the histogram adds up, the closed
 * connection's give-back counts its turns, and inspect_loop() reports the
 * scale (grants, connections, uptime).
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "inspect.h"
#include "log.h"
#include "loopstat.h"
#include "rawclient.h"
#include "server.h"
#include "settings.h"
#include "testutil.h"

#define US 1000ull
#define MS 1000000ull

static uint64_t hist_sum(const struct loop_stats *st)
{
	uint64_t sum = 0;

	for (int i = 0; i < LOOPSTAT_BUCKETS; i++)
		sum += st->request_hist[i];
	return sum;
}

/* ---- buckets --------------------------------------------------------------- */

/* clang-format off */
static const struct {
	uint64_t ns;
	unsigned int bucket;
	bool over_1ms;
} durations[] = {
	{ 0,		0, false },
	{ 1,		0, false },
	{ 850,		0, false }, /* a Nop */
	{ 10 * US - 1,	0, false },
	{ 10 * US,	1, false },
	{ 42 * US,	1, false },
	{ 100 * US - 1,	1, false },
	{ 100 * US,	2, false },
	{ 230 * US,	2, false }, /* an Alloc of 1024 objects */
	{ 1 * MS - 1,	2, false },
	{ 1 * MS,	3, false }, /* exactly 1 ms is not over it */
	{ 1 * MS + 1,	3, true },
	{ 10 * MS - 1,	3, true },
	{ 10 * MS,	4, true },
	{ 2500 * MS,	4, true },
	{ UINT64_MAX,	4, true },
};
/* clang-format on */

#define NR_DURATIONS (sizeof(durations) / sizeof(durations[0]))

START_TEST(test_bucket_bounds)
{
	for (size_t i = 0; i < NR_DURATIONS; i++)
		ck_assert_msg(loopstat_bucket(durations[i].ns) == durations[i].bucket,
			      "%llu ns: bucket %u, not %u", (unsigned long long)durations[i].ns,
			      loopstat_bucket(durations[i].ns), durations[i].bucket);
	ck_assert_uint_eq(loopstat_bucket_ns[0], 10 * US);
	ck_assert_uint_eq(loopstat_bucket_ns[1], 100 * US);
	ck_assert_uint_eq(loopstat_bucket_ns[2], 1 * MS);
	ck_assert_uint_eq(loopstat_bucket_ns[3], 10 * MS);
}
END_TEST

START_TEST(test_requests_counted)
{
	uint64_t want[LOOPSTAT_BUCKETS] = { 0 }, over = 0;
	struct loop_stats st;

	loopstat_init(&st);
	ck_assert_str_eq(st.request_max_kind, "");
	for (size_t i = 0; i < NR_DURATIONS; i++) {
		loopstat_request(&st, durations[i].ns, "nop");
		want[durations[i].bucket]++;
		over += durations[i].over_1ms;
	}
	ck_assert_uint_eq(st.requests, NR_DURATIONS);
	for (int b = 0; b < LOOPSTAT_BUCKETS; b++)
		ck_assert_msg(st.request_hist[b] == want[b], "bucket %d: %llu, not %llu", b,
			      (unsigned long long)st.request_hist[b], (unsigned long long)want[b]);
	ck_assert_uint_eq(hist_sum(&st), st.requests);
	ck_assert_uint_eq(st.requests_over_1ms, over);
	ck_assert_uint_eq(st.requests_over_1ms, 5);
	ck_assert_uint_eq(st.request_max_ns, UINT64_MAX);
}
END_TEST

/* ---- maxima and kinds ------------------------------------------------------ */

START_TEST(test_worst_request_and_kind)
{
	static const char alloc[] = "alloc";
	struct loop_stats st;

	loopstat_init(&st);
	loopstat_request(&st, 850, "nop");
	ck_assert_uint_eq(st.request_max_ns, 850);
	ck_assert_str_eq(st.request_max_kind, "nop");
	loopstat_request(&st, 230 * US, alloc);
	loopstat_request(&st, 12 * US, "free");
	loopstat_request(&st, 3 * US, "meminfo");
	ck_assert_uint_eq(st.request_max_ns, 230 * US);
	ck_assert_ptr_eq(st.request_max_kind, alloc);
	/* A tie keeps the first. */
	loopstat_request(&st, 230 * US, "slab_alloc");
	ck_assert_str_eq(st.request_max_kind, "alloc");
	loopstat_request(&st, 230 * US + 1, "vmalloc");
	ck_assert_uint_eq(st.request_max_ns, 230 * US + 1);
	ck_assert_str_eq(st.request_max_kind, "vmalloc");
	loopstat_request(&st, 4 * MS, "inspect");
	loopstat_request(&st, 999 * US, "hello");
	ck_assert_uint_eq(st.request_max_ns, 4 * MS);
	ck_assert_str_eq(st.request_max_kind, "inspect");
	ck_assert_uint_eq(st.requests, 8);
	ck_assert_uint_eq(st.requests_over_1ms, 1);
	ck_assert_uint_eq(st.request_hist[0], 2); /* nop, meminfo */
	ck_assert_uint_eq(st.request_hist[1], 1); /* free */
	ck_assert_uint_eq(st.request_hist[2], 4); /* alloc, slab_alloc, vmalloc, hello */
	ck_assert_uint_eq(st.request_hist[3], 1); /* inspect */
	ck_assert_uint_eq(st.request_hist[4], 0);
	/* Requests leave the other figures alone. */
	ck_assert_uint_eq(st.teardown_turns, 0);
	ck_assert_uint_eq(st.teardown_max_ns + st.tick_max_ns + st.accept_max_ns, 0);
}
END_TEST

START_TEST(test_other_maxima)
{
	struct loop_stats st;

	loopstat_init(&st);
	loopstat_teardown(&st, 480 * US);
	loopstat_teardown(&st, 510 * US);
	loopstat_teardown(&st, 35 * US); /* the last turn: the connection freed */
	ck_assert_uint_eq(st.teardown_turns, 3);
	ck_assert_uint_eq(st.teardown_max_ns, 510 * US);
	loopstat_tick(&st, 60 * US);
	loopstat_tick(&st, 2 * MS);
	loopstat_tick(&st, 40 * US);
	ck_assert_uint_eq(st.tick_max_ns, 2 * MS);
	loopstat_accept(&st, 15 * US);
	loopstat_accept(&st, 9 * US);
	ck_assert_uint_eq(st.accept_max_ns, 15 * US);
	ck_assert_uint_eq(st.requests, 0);
	ck_assert_uint_eq(st.request_max_ns, 0);
	ck_assert_uint_eq(hist_sum(&st), 0);
}
END_TEST

/* The module's own clock: a 2 ms sleep is counted as over 1 ms, in the
 * <10 ms bucket unless the host stalled us for 8 ms more. */
START_TEST(test_real_clock)
{
	struct timespec nap = { .tv_nsec = 2 * MS };
	struct loop_stats st;
	uint64_t before = loopstat_now_ns(), t0, ns;

	loopstat_init(&st);
	ck_assert_uint_ge(st.started_ns, before);
	ck_assert_uint_le(st.started_ns, loopstat_now_ns());
	t0 = loopstat_now_ns();
	nanosleep(&nap, NULL);
	ns = loopstat_now_ns() - t0;
	loopstat_request(&st, ns, "alloc");
	ck_assert_uint_ge(ns, 2 * MS);
	ck_assert_uint_eq(st.requests_over_1ms, 1);
	ck_assert_uint_eq(st.request_hist[loopstat_bucket(ns)], 1);
	ck_assert_uint_ge(loopstat_bucket(ns), 3);
	ck_assert_uint_eq(st.request_max_ns, ns);
	/* Two back-to-back reads: what an idle request costs in clock alone. */
	t0 = loopstat_now_ns();
	ck_assert_uint_lt(loopstat_now_ns() - t0, 1 * MS);
}
END_TEST

/* ---- the real dispatcher --------------------------------------------------- */

struct core {
	struct settings cfg;
	struct event_base *base;
	struct server srv;
	int fd; /* our end */
};

static void core_start(struct core *k)
{
	int sv[2];

	settings_defaults(&k->cfg);
	k->cfg.pool_size = 16ull << 20;
	k->cfg.backing = POOL_BACKING_SHMEM;
	k->cfg.allow_all = true;
	k->cfg.uid_max_share = 100;
	log_init(LOG_LEVEL_WARN);
	k->base = event_base_new();
	ck_assert_ptr_nonnull(k->base);
	ck_assert_int_eq(server_init_unlisted(&k->srv, &k->cfg, k->base), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(server_add_connection(&k->srv, sv[1]), 0);
	k->fd = sv[0];
}

static void core_stop(struct core *k)
{
	server_fini(&k->srv);
	event_base_free(k->base);
	settings_fini(&k->cfg);
}

/* Sends @req and runs the loop until its reply is there. */
static Kmalloc__Reply *core_call(struct core *k, Kmalloc__Request *req)
{
	Kmalloc__Reply *r;

	ck_assert_int_eq(raw_send(k->fd, req), 0);
	event_base_loop(k->base, EVLOOP_ONCE);
	r = raw_recv(k->fd, NULL, 1000);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(r->id, req->id);
	return r;
}

START_TEST(test_dispatch_counts_every_request)
{
	static const char *const kinds[] = { "hello",	"alloc", "slab_alloc", "free",
					     "meminfo", "nop",	 "unknown" };
	Kmalloc__Request req = KMALLOC__REQUEST__INIT;
	Kmalloc__Hello hello = KMALLOC__HELLO__INIT;
	Kmalloc__Alloc alloc = KMALLOC__ALLOC__INIT;
	Kmalloc__SlabAlloc slab = KMALLOC__SLAB_ALLOC__INIT;
	Kmalloc__Free fr = KMALLOC__FREE__INIT;
	Kmalloc__MeminfoRequest mi = KMALLOC__MEMINFO_REQUEST__INIT;
	Kmalloc__Nop nop = KMALLOC__NOP__INIT;
	struct inspect_loop row;
	struct core k;
	Kmalloc__Reply *r;
	uint64_t first = 0, sent = 0;
	bool known = false;

	core_start(&k);
	inspect_loop(&k.srv, &row);
	ck_assert_uint_eq(row.stats.requests, 0);
	ck_assert_uint_eq(row.connections, 1);

	hello.version = 1;
	hello.name = "loopstat";
	req.id = ++sent;
	req.body_case = KMALLOC__REQUEST__BODY_HELLO;
	req.hello = &hello;
	r = core_call(&k, &req);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);

	alloc.size = 64;
	alloc.gfp = 0xcc0;
	alloc.count = 100;
	req.id = ++sent;
	req.body_case = KMALLOC__REQUEST__BODY_ALLOC;
	req.alloc = &alloc;
	r = core_call(&k, &req);
	ck_assert_int_eq(r->error, 0);
	ck_assert_uint_eq(r->alloc->n_grants, 100);
	first = r->alloc->grants[0]->id;
	kmalloc__reply__free_unpacked(r, NULL);

	slab.size = 512;
	slab.gfp = 0xcc0;
	slab.count = 2;
	req.id = ++sent;
	req.body_case = KMALLOC__REQUEST__BODY_SLAB_ALLOC;
	req.slab_alloc = &slab;
	r = core_call(&k, &req);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);

	fr.n_grants = 1;
	fr.grants = &first;
	req.id = ++sent;
	req.body_case = KMALLOC__REQUEST__BODY_FREE;
	req.free = &fr;
	r = core_call(&k, &req);
	ck_assert_int_eq(r->error, 0);
	kmalloc__reply__free_unpacked(r, NULL);

	for (int i = 0; i < 10; i++) {
		req.id = ++sent;
		if (i % 2) {
			req.body_case = KMALLOC__REQUEST__BODY_MEMINFO;
			req.meminfo = &mi;
		} else {
			req.body_case = KMALLOC__REQUEST__BODY_NOP;
			req.nop = &nop;
		}
		r = core_call(&k, &req);
		ck_assert_int_eq(r->error, 0);
		kmalloc__reply__free_unpacked(r, NULL);
	}
	/* No body this daemon knows (as from a newer client): refused, and
	 * timed all the same. */
	req.id = ++sent;
	req.body_case = KMALLOC__REQUEST__BODY__NOT_SET;
	r = core_call(&k, &req);
	ck_assert_int_eq(r->error, 38); /* ENOSYS */
	kmalloc__reply__free_unpacked(r, NULL);

	inspect_loop(&k.srv, &row);
	ck_assert_uint_eq(row.stats.requests, sent);
	ck_assert_uint_eq(hist_sum(&row.stats), sent);
	ck_assert_uint_gt(row.stats.request_max_ns, 0);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		known |= !strcmp(row.stats.request_max_kind, kinds[i]);
	ck_assert_msg(known, "worst request of kind '%s'", row.stats.request_max_kind);
	ck_assert_uint_eq(row.grants, 99 + 2);
	ck_assert_uint_eq(row.connections, 1);
	ck_assert_uint_le(row.uptime_ns, loopstat_now_ns() - k.srv.loop.started_ns);
	ck_assert_uint_eq(row.stats.teardown_turns, 0);

	/* The client goes: its 101 grants come back in timed turns, the last
	 * of which frees the connection. */
	close(k.fd);
	for (int i = 0; i < 100 && k.srv.nr_conns; i++)
		event_base_loop(k.base, EVLOOP_ONCE);
	inspect_loop(&k.srv, &row);
	ck_assert_uint_eq(row.connections, 0);
	ck_assert_uint_eq(row.grants, 0);
	ck_assert_uint_ge(row.stats.teardown_turns, 1);
	ck_assert_uint_gt(row.stats.teardown_max_ns, 0);
	ck_assert_uint_eq(row.stats.requests, sent);
	core_stop(&k);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loopstat");
	TCase *tc;
	int failed;

	tc = tcase_create("figures");
	tcase_add_test(tc, test_bucket_bounds);
	tcase_add_test(tc, test_requests_counted);
	tcase_add_test(tc, test_worst_request_and_kind);
	tcase_add_test(tc, test_other_maxima);
	tcase_add_test(tc, test_real_clock);
	suite_add_tcase(s, tc);

	tc = tcase_create("dispatch");
	tcase_add_test(tc, test_dispatch_counts_every_request);
	suite_add_tcase(s, tc);
	failed = test_run_suite(s);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
