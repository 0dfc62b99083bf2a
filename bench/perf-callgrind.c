// SPDX-License-Identifier: MIT
/*
 * perf-callgrind.c - figure 6: the daemon's instructions per request, counted
 * by callgrind. A kmallocd of its own runs under `valgrind --tool=callgrind`
 * (shmem pool of 64 MiB, on the daemon's CPU); one raw-protocol client sends
 * a fixed sequence and disconnects, the daemon is stopped, and the total Ir
 * of its output is read. Each kind of request is run twice, with N1 and N2
 * requests after the same warm-up, so that start-up, the connection, the
 * warm-up and the shutdown cancel out: Ir per request = (Ir2 - Ir1) / (N2 - N1).
 */
#include "config.h"
#include "kmperf.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rawproto.h"

enum cg_kind { CG_NOP, CG_PAIR, CG_BULK, CG_MAX };

static const char *const cg_labels[CG_MAX] = {
	[CG_NOP] = "daemon Ir per request: Nop (a bare round trip)",
	[CG_PAIR] = "daemon Ir per request: Alloc 64 B + 1 release riding",
	[CG_BULK] = "daemon Ir per request: Alloc 60 x 64 B / Free of 60",
};

#define BULK 60

/* @n requests of @kind; what they hold is released by one Nop at the end. */
static int cg_requests(int fd, enum cg_kind kind, unsigned int n, uint64_t *id)
{
	uint64_t held[BULK], prev = 0;
	int ret = 0;

	for (unsigned int i = 0; i < n && ret >= 0; i++) {
		switch (kind) {
		case CG_NOP:
			ret = rp_nop(fd, (*id)++, NULL, 0);
			break;
		case CG_PAIR:
			ret = rp_alloc(fd, (*id)++, 64, 1, prev ? &prev : NULL, prev ? 1 : 0,
				       &prev);
			break;
		case CG_BULK:
			if (i % 2 == 0)
				ret = rp_alloc(fd, (*id)++, 64, BULK, NULL, 0, held);
			else
				ret = rp_free(fd, (*id)++, held, BULK);
			break;
		default:
			break;
		}
	}
	if (ret >= 0 && kind == CG_PAIR && prev)
		ret = rp_nop(fd, (*id)++, &prev, 1);
	if (ret >= 0 && kind == CG_BULK && n % 2)
		ret = rp_free(fd, (*id)++, held, BULK);
	return ret < 0 ? ret : 0;
}

static int read_totals(const char *path, uint64_t *ir)
{
	char line[256];
	FILE *f = fopen(path, "re");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "totals:", 7) == 0 || strncmp(line, "summary:", 8) == 0) {
			*ir = strtoull(line + (line[0] == 't' ? 7 : 8), NULL, 10);
			ret = 0;
			if (line[0] == 't')
				break;
		}
	}
	fclose(f);
	return ret;
}

/* The last line of @path into @buf ("" if none). */
static void last_line(const char *path, char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "re");

	buf[0] = '\0';
	while (f && fgets(line, sizeof(line), f))
		if (line[0] != '\n')
			snprintf(buf, len, "%.*s", (int)strcspn(line, "\n"), line);
	if (f)
		fclose(f);
}

/* Starts kmallocd under callgrind on @sock, writing @out, and waits until it
 * listens. Return: its pid, or -1 with @why. */
static pid_t cg_spawn(const char *sock, const char *out, const char *log, char *why, size_t len)
{
	char opt_out[160], last[200];
	char *argv[] = { "valgrind", "--tool=callgrind", opt_out,	"-q",  (char *)opt.kmallocd,
			 "--socket", (char *)sock,	 "--pool-size", "64M", "--backing",
			 "shmem",    "--log-level",	 "warning",	NULL };
	uint64_t deadline = now_ns() + 120000000000ull;
	int status;
	pid_t pid;

	snprintf(opt_out, sizeof(opt_out), "--callgrind-out-file=%s", out);
	pid = spawn_logged(argv, log, st.cpu_server);
	while (!socket_accepts(sock)) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			last_line(log, last, sizeof(last));
			snprintf(why, len, "kmallocd under valgrind exited before it listened: %s",
				 last);
			return -1;
		}
		if (now_ns() > deadline) {
			snprintf(why, len, "kmallocd under valgrind did not listen within 120 s");
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		sleep_ms(20);
	}
	return pid;
}

/* The same warm-up in every run (slabs made, tables grown), then @n of @kind.
 * Return: 0, or -errno. */
static int cg_drive(const char *sock, enum cg_kind kind, unsigned int n)
{
	uint64_t id = 2;
	int fd, ret = 0;

	fd = rp_connect(sock, "kmperf-callgrind");
	if (fd < 0)
		return fd;
	for (int k = 0; k < CG_MAX && ret == 0; k++)
		ret = cg_requests(fd, (enum cg_kind)k, 40, &id);
	if (ret == 0)
		ret = cg_requests(fd, kind, n, &id);
	close(fd);
	return ret;
}

/* One run of the daemon under callgrind. Return: 0 with its Ir, or -1 with @why. */
static int cg_run(enum cg_kind kind, unsigned int n, uint64_t *ir, char *why, size_t len)
{
	char sock[128], out[128], log[128];
	int status, ret;
	pid_t pid;

	snprintf(sock, sizeof(sock), "%s/cg.sock", st.tmpdir);
	snprintf(out, sizeof(out), "%s/cg.out", st.tmpdir);
	snprintf(log, sizeof(log), "%s/cg.log", st.tmpdir);
	unlink(out);
	pid = cg_spawn(sock, out, log, why, len);
	if (pid < 0) {
		ret = -1;
		goto out;
	}
	ret = cg_drive(sock, kind, n);
	if (ret < 0) {
		snprintf(why, len, "a request failed: %s", strerror(-ret));
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		goto out;
	}
	sleep_ms(50); /* the daemon sees the hang-up before SIGTERM */
	kill(pid, SIGTERM);
	if (child_reap(pid, 120000000000ull, &status) < 0) {
		snprintf(why, len, "kmallocd under valgrind did not stop on SIGTERM");
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ret = -1;
		goto out;
	}
	ret = read_totals(out, ir);
	if (ret < 0)
		snprintf(why, len, "no totals in callgrind's output");
out:
	unlink(out);
	unlink(log);
	unlink(sock);
	return ret;
}

static bool have_valgrind(void)
{
	return system("valgrind --version >/dev/null 2>&1") == 0;
}

void fig_callgrind(void)
{
	unsigned int n1 = opt.quick ? 20 : 100, n2 = opt.quick ? 120 : 1100;
	double ir[CG_MAX] = { 0 };
	char why[256] = "";

	if (!opt.kmallocd) {
		for (int k = 0; k < CG_MAX; k++)
			row_na(6, cg_labels[k], "no kmallocd to run under callgrind (--kmallocd)");
		return;
	}
	if (!have_valgrind()) {
		for (int k = 0; k < CG_MAX; k++)
			row_na(6, cg_labels[k],
			       "valgrind is not installed (bench/setup installs it as root)");
		return;
	}
	progress("figure 6: kmallocd under callgrind, %u runs", opt.quick ? 2 : 2 * CG_MAX);
	for (int k = 0; k < CG_MAX; k++) {
		uint64_t a = 0, b = 0;

		if (opt.quick && k != CG_PAIR)
			continue; /* one kind is enough for a smoke run */
		if (cg_run((enum cg_kind)k, n1, &a, why, sizeof(why)) < 0 ||
		    cg_run((enum cg_kind)k, n2, &b, why, sizeof(why)) < 0) {
			row_na(6, cg_labels[k], "%s", why);
			continue;
		}
		ir[k] = ((double)b - (double)a) / (double)(n2 - n1);
		row_add(&(struct row_spec){ .fig = 6,
					    .measure = cg_labels[k],
					    .value = ir[k],
					    .unit = "Ir",
					    .base_name = k && ir[CG_NOP] > 0 ? "Nop" : NULL,
					    .base = ir[CG_NOP] });
	}
	note_add("figure 6: Ir = instructions the daemon executed (callgrind), (Ir of %u requests "
		 "- Ir of %u) / %u, after the same warm-up; shmem pool of 64 MiB",
		 n2, n1, n2 - n1);
}
