/* SPDX-License-Identifier: MIT */
/*
 * reaper.h - closing descriptors off the event loop.
 *
 * close() of a descriptor whose last reference we hold runs the file's
 * release in our thread, and its owner decides how long that takes: a TCP
 * socket with unsent data and SO_LINGER blocks the closer for the linger
 * time. Descriptors a client passed to us (refused with SO_PASSRIGHTS where
 * the kernel has it, 6.16+) and client connection sockets (whose receive
 * queue may still hold such descriptors) are therefore closed by a thread of
 * their own, never by the event loop.
 */
#pragma once

/* Starts the closing thread. 0 or -errno (then reaper_close() closes inline). */
int reaper_start(void);
/* Closes every queued descriptor and joins the thread. */
void reaper_stop(void);
/* Closes @fd on the closing thread (inline when it is not running). */
void reaper_close(int fd);
