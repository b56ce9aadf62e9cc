/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pr_processor: the daemon's public face (pr_processor.h): its metrics
 * (pr_metrics) and its run loop (pr_loop), built and freed together.
 */
#include "pr_processor.h"

#include <stdio.h>
#include <stdlib.h>

#include "pr_loop.h"
#include "pr_metrics.h"

struct pr_processor_s {
    pr_config_t cfg;
    pr_metrics_t *m;
    pr_loop_t *loop;
};

void pr_processor_free(pr_processor_t *pr)
{
    if (pr) {
        pr_loop_free(pr->loop);
        pr_metrics_free(pr->m);
    }
    free(pr);
}

pr_processor_t *pr_processor_new(const pr_config_t *cfg, char *errstr, size_t errstr_size)
{
    pr_processor_t *pr = calloc(1, sizeof *pr);
    if (!pr) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pr->cfg = *cfg;
    if (!(pr->m = pr_metrics_new((int)cfg->partitions))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!(pr->loop = pr_loop_new(&pr->cfg, pr->m, errstr, errstr_size)))
        goto fail;
    return pr;
fail:
    pr_processor_free(pr);
    return NULL;
}

int pr_processor_run(pr_processor_t *pr)
{
    return pr_loop_run(pr->loop);
}

void pr_processor_stop(pr_processor_t *pr)
{
    pr_loop_stop(pr->loop);
}

int pr_processor_healthy(pr_processor_t *pr)
{
    return pr_loop_healthy(pr->loop);
}

char *pr_processor_metrics(pr_processor_t *pr, size_t *len)
{
    return pr_metrics_render(pr->m, len);
}

