// SPDX-License-Identifier: MIT
/*
 * tcache.c - per-thread magazines in front of the client's slabs: each
 * thread keeps, per class, a stack of free objects it can hand out and take
 * back without a lock (kmalloc.c's fast paths). A magazine that runs empty
 * is filled from the slabs, one that overflows gives its oldest half back
 * (slab.c, under the class lock); an object freed by another thread than the
 * one that allocated it simply joins the freeing thread's magazine and
 * returns to its slab from there.
 *
 * A thread finds its cache for a client in one compare: kmc_tls remembers
 * the last client it used, by a process-unique number (a client freed and
 * another made at the same address never matches); other clients go
 * through a pthread key per client. A thread that exits gives its
 * magazines back (the key's destructor). km_disconnect() frees every cache
 * of the client: calls on it must be over by then (kmclient.h).
 */
#include "config.h"
#include "kmclient-private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

__thread struct kmc_tls kmc_tls __attribute__((tls_model("initial-exec")));

static uint64_t next_uid = 1;

/* How many objects a thread keeps per class: enough that a batch of a
 * thousand small objects allocated and freed over and over never leaves
 * the magazine, bounded in bytes so that a thread never sits on more than
 * KMC_MAG_BYTES of a class. */
static uint32_t mag_cap(const struct kmc_class *k)
{
	uint32_t cap = KMC_MAG_BYTES / k->size;

	return cap < 8 ? 8 : cap > KMC_MAG_MAX ? KMC_MAG_MAX : cap;
}

/* The key's destructor: the exiting thread's objects go back to the slabs. */
static void tcache_exit(void *arg)
{
	struct kmc_tcache *tc = arg;
	struct km_client *c = tc->c;

	for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
		kmc_slab_drain_mag(c, i, &tc->mags[i], 0);
	pthread_mutex_lock(&c->tcache_lock);
	TAILQ_REMOVE(&c->tcaches, tc, link);
	pthread_mutex_unlock(&c->tcache_lock);
	if (kmc_tls.tc == tc) {
		kmc_tls.uid = 0;
		kmc_tls.tc = NULL;
	}
	free(tc);
}

int kmc_tcache_init(struct km_client *c)
{
	int err;

	c->uid = __atomic_fetch_add(&next_uid, 1, __ATOMIC_RELAXED);
	TAILQ_INIT(&c->tcaches);
	pthread_mutex_init(&c->tcache_lock, NULL);
	/* Without a key (PTHREAD_KEYS_MAX clients in this process) every
	 * object goes through the slabs' lock: slower, still correct. */
	err = pthread_key_create(&c->tkey, tcache_exit);
	c->tkey_made = err == 0;
	return 0;
}

void kmc_tcache_destroy(struct km_client *c)
{
	struct kmc_tcache *tc;

	if (!c->uid)
		return; /* never set up */
	if (c->tkey_made)
		pthread_key_delete(c->tkey);
	c->tkey_made = false;
	/* The client goes: its caches' objects go with its slabs. */
	while ((tc = TAILQ_FIRST(&c->tcaches))) {
		TAILQ_REMOVE(&c->tcaches, tc, link);
		free(tc);
	}
	if (kmc_tls.uid == c->uid) {
		kmc_tls.uid = 0;
		kmc_tls.tc = NULL;
	}
	pthread_mutex_destroy(&c->tcache_lock);
}

struct kmc_tcache *kmc_tcache_slow(struct km_client *c)
{
	struct kmc_tcache *tc;

	if (!c->tkey_made || !c->caching)
		return NULL;
	tc = pthread_getspecific(c->tkey);
	if (!tc) {
		size_t nr = 0;

		for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++)
			nr += mag_cap(&c->classes[i]);
		tc = calloc(1, sizeof(*tc) + nr * sizeof(tc->entries[0]));
		if (!tc)
			return NULL;
		tc->c = c;
		nr = 0;
		for (unsigned int i = 0; i < KM_NR_KMALLOC_CLASSES; i++) {
			tc->mags[i].cap = mag_cap(&c->classes[i]);
			tc->mags[i].e = tc->entries + nr;
			nr += tc->mags[i].cap;
		}
		if (pthread_setspecific(c->tkey, tc)) {
			free(tc);
			return NULL;
		}
		pthread_mutex_lock(&c->tcache_lock);
		TAILQ_INSERT_HEAD(&c->tcaches, tc, link);
		pthread_mutex_unlock(&c->tcache_lock);
	}
	kmc_tls.uid = c->uid;
	kmc_tls.tc = tc;
	return tc;
}

void kmc_tcache_drain_self(struct km_client *c)
{
	struct kmc_tcache *tc = c->tkey_made ? pthread_getspecific(c->tkey) : NULL;

	for (unsigned int i = 0; tc && i < KM_NR_KMALLOC_CLASSES; i++)
		kmc_slab_drain_mag(c, i, &tc->mags[i], 0);
}
