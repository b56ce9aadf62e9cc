/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C11 threads over POSIX threads, preloaded (LD_PRELOAD) into the
 * ThreadSanitizer run only (scripts/test --tsan builds and loads it).
 *
 * Why: Debian 12's librdkafka uses glibc's C11 threads (thrd_create,
 * mtx_lock, cnd_wait, ...). glibc implements them by calling its pthread
 * functions internally, past the interceptors of clang 14's TSan runtime, so
 * TSan never learns of librdkafka's threads (their first malloc crashes in
 * the TSan allocator) nor of its locks (every hand-over between its threads
 * and our callbacks would look like a race). These definitions take the C11
 * calls first and make them through the pthread functions, which TSan
 * intercepts: the threads become known and the locks become
 * happens-before edges. glibc's types are layout-compatible by design
 * (mtx_t and pthread_mutex_t, cnd_t and pthread_cond_t, once_flag and
 * pthread_once_t, thrd_t and pthread_t).
 *
 * Not instrumented itself and not linked into any product binary.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

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

int mtx_init(mtx_t *mtx, int type)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive)
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
    pthread_mutexattr_destroy(&attr);
    return to_thrd(err);
}

int mtx_lock(mtx_t *mtx)
{
    return to_thrd(pthread_mutex_lock((pthread_mutex_t *)mtx));
}

int mtx_trylock(mtx_t *mtx)
{
    return to_thrd(pthread_mutex_trylock((pthread_mutex_t *)mtx));
}

int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return to_thrd(pthread_mutex_timedlock((pthread_mutex_t *)mtx, ts));
}

int mtx_unlock(mtx_t *mtx)
{
    return to_thrd(pthread_mutex_unlock((pthread_mutex_t *)mtx));
}

void mtx_destroy(mtx_t *mtx)
{
    pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cnd)
{
    return to_thrd(pthread_cond_init((pthread_cond_t *)cnd, NULL));
}

int cnd_signal(cnd_t *cnd)
{
    return to_thrd(pthread_cond_signal((pthread_cond_t *)cnd));
}

int cnd_broadcast(cnd_t *cnd)
{
    return to_thrd(pthread_cond_broadcast((pthread_cond_t *)cnd));
}

int cnd_wait(cnd_t *cnd, mtx_t *mtx)
{
    return to_thrd(pthread_cond_wait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx));
}

int cnd_timedwait(cnd_t *restrict cnd, mtx_t *restrict mtx, const struct timespec *restrict ts)
{
    return to_thrd(pthread_cond_timedwait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx, ts));
}

void cnd_destroy(cnd_t *cnd)
{
    pthread_cond_destroy((pthread_cond_t *)cnd);
}

void call_once(once_flag *flag, void (*func)(void))
{
    pthread_once((pthread_once_t *)flag, func);
}
