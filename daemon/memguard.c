// SPDX-License-Identifier: MIT
/*
 * memguard.c - memset into pool memory that a client may have punched, with
 * the SIGBUS of a failed refault turned into -EFAULT (memguard.h says why).
 *
 * The handler is installed with SA_NODEFER so that jumping out of it with
 * siglongjmp() and no saved mask leaves SIGBUS unblocked: the guard costs a
 * sigsetjmp() without a syscall, not a sigprocmask() per call. Only a fault
 * inside the range being written, on the thread writing it, is caught.
 */
#include "config.h"
#include "memguard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

static __thread sigjmp_buf *guard_env;
static __thread uintptr_t guard_lo, guard_hi;

static void memguard_on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	uintptr_t addr = (uintptr_t)si->si_addr;

	(void)uctx;
	/* si_code > 0: a fault the kernel raised, not a kill(2). */
	if (si->si_code > 0 && guard_env && addr >= guard_lo && addr < guard_hi)
		siglongjmp(*guard_env, 1);
	/* Not ours: die of it as if no handler were there. A fault runs its
	 * instruction again under the default action; a SIGBUS someone sent
	 * is raised again, or it would be lost (and the guard with it). */
	signal(sig, SIG_DFL);
	if (si->si_code <= 0)
		raise(sig);
}

int memguard_init(void)
{
	struct sigaction sa = { .sa_sigaction = memguard_on_sigbus,
				.sa_flags = SA_SIGINFO | SA_NODEFER };

	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

int memguard_memset(void *p, int c, size_t len)
{
	sigjmp_buf env;

	if (sigsetjmp(env, 0)) {
		guard_env = NULL;
		return -EFAULT;
	}
	guard_lo = (uintptr_t)p;
	guard_hi = (uintptr_t)p + len;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guard_env = &env;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	memset(p, c, len);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guard_env = NULL;
	return 0;
}
