/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A Kafka of the test's own through scripts/kafka, for tests that inject
 * broker faults (kill, pause, resume, restart N) and so must not share the
 * suite's broker: a throwaway state folder, every command's output in a
 * file beside it, and a `stop` when the test program ends however it ends
 * (atexit, and a reaper child for a sanitizer's halt that skips atexit).
 */
#ifndef FL_KBROKER_H
#define FL_KBROKER_H

#include <stddef.h>

/* Makes the state folder under TMPDIR (stem in its name) and arranges the
 * stop at exit. 0 or -1. Call once, before fl_kbroker. */
int fl_kbroker_init(const char *stem);
/* Runs scripts/kafka args on the folder; its exit status (128: no exit). */
int fl_kbroker(const char *args);
/* The last command's output (malloc'd, never NULL), printed to stderr. */
char *fl_kbroker_output(void);
void fl_kbroker_show_output(void);
/* The state folder, and the file that holds the last command's output. */
const char *fl_kbroker_dir(void);
const char *fl_kbroker_outfile(void);
/* Stops the brokers and removes the folder and the output file (after a
 * success; a failure keeps them for its post-mortem). 0 or -1. */
int fl_kbroker_remove(void);
/* `env`'s bootstrap list into buf. 0 or -1. */
int fl_kbroker_bootstrap(char *buf, size_t size);

#endif
