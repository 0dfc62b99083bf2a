// SPDX-License-Identifier: MIT
/*
 * reaper.c - a thread that closes descriptors the event loop must not close
 * itself (reaper.h says which and why). A mutex-protected growing array and
 * a condition variable: queuing costs no syscall unless the thread sleeps.
 * The thread blocks every signal, so they keep going to the event loop.
 */
#include "config.h"
#include "reaper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool running;
	bool stopping;
	int *fds;
	unsigned int nr, cap;
} reaper = { .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER };

static void *reaper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reaper.lock);
	for (;;) {
		while (reaper.nr) {
			int fd = reaper.fds[--reaper.nr];

			pthread_mutex_unlock(&reaper.lock);
			close(fd);
			pthread_mutex_lock(&reaper.lock);
		}
		if (reaper.stopping)
			break;
		pthread_cond_wait(&reaper.wake, &reaper.lock);
	}
	pthread_mutex_unlock(&reaper.lock);
	return NULL;
}

int reaper_start(void)
{
	sigset_t all, old;
	int err;

	if (reaper.running)
		return 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	reaper.stopping = false;
	err = pthread_create(&reaper.thread, NULL, reaper_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_warn("cannot start the descriptor-closing thread: %s", strerror(err));
		return -err;
	}
	reaper.running = true;
	return 0;
}

void reaper_stop(void)
{
	if (!reaper.running)
		return;
	pthread_mutex_lock(&reaper.lock);
	reaper.stopping = true;
	pthread_cond_signal(&reaper.wake);
	pthread_mutex_unlock(&reaper.lock);
	pthread_join(reaper.thread, NULL);
	reaper.running = false;
	free(reaper.fds);
	reaper.fds = NULL;
	reaper.nr = reaper.cap = 0;
}

void reaper_close(int fd)
{
	if (fd < 0)
		return;
	pthread_mutex_lock(&reaper.lock);
	if (!reaper.running)
		goto inline_close;
	if (reaper.nr == reaper.cap) {
		unsigned int cap = reaper.cap ? 2 * reaper.cap : 64;
		int *fds = realloc(reaper.fds, cap * sizeof(*fds));

		if (!fds)
			goto inline_close;
		reaper.fds = fds;
		reaper.cap = cap;
	}
	reaper.fds[reaper.nr++] = fd;
	pthread_cond_signal(&reaper.wake);
	pthread_mutex_unlock(&reaper.lock);
	return;

inline_close:
	pthread_mutex_unlock(&reaper.lock);
	close(fd);
}
