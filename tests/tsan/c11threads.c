/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C11 thread creation over POSIX threads, preloaded (LD_PRELOAD) into the
 * ThreadSanitizer run only (scripts/test --tsan builds and loads it).
 *
 * Why: Debian 12's librdkafka starts its threads with glibc's thrd_create,
 * which calls glibc's pthread_create internally, past the interceptor of
 * clang 14's TSan runtime: TSan never learns of those threads, and their
 * first malloc crashes inside the TSan allocator (every test that talks to
 * Kafka died at once). This thrd_create (and its join and detach) takes the
 * call first and makes it through pthread_create, which TSan intercepts.
 * thrd_t is pthread_t in glibc.
 *
 * librdkafka's C11 mutexes and condition variables are deliberately left to
 * glibc: librdkafka is not instrumented and stays invisible to TSan as a
 * whole (tests/tsan/tsan.supp ignores the interceptors it calls), so routing
 * only its locks through TSan made its own internal hand-overs (rwlocks,
 * atomics) look like races inside librdkafka.
 *
 * Not instrumented itself and not linked into any product binary.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

static int to_thrd(int err)
{
    switch (err) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

typedef struct {
    thrd_start_t func;
    void *arg;
} start_t;

static void *trampoline(void *p)
{
    start_t s = *(start_t *)p;
    free(p);
    /* glibc's thrd_join reads the int back from the pointer-sized result */
    return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    start_t *s = malloc(sizeof *s);
    if (!s)
        return thrd_nomem;
    s->func = func;
    s->arg = arg;
    pthread_t t;
    int err = pthread_create(&t, NULL, trampoline, s);
    if (err) {
        free(s);
        return to_thrd(err);
    }
    *thr = (thrd_t)t;
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *ret = NULL;
    int err = pthread_join((pthread_t)thr, &ret);
    if (err)
        return to_thrd(err);
    if (res)
        *res = (int)(intptr_t)ret;
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return to_thrd(pthread_detach((pthread_t)thr));
}
