/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An independent sequential model for processor tests: reads
 * <prefix>.commands back in offset order, applies every flush in-process
 * with the engine, and checks <prefix>.events against it: one outcome per
 * commands record, equal codes, versions, results and chain hashes,
 * contiguous versions per document, every (client, seq) answered once.
 */
#ifndef FL_MODEL_H
#define FL_MODEL_H

#include <stdint.h>

#include "flushline/engine.h"

typedef struct fl_model_s fl_model_t;

typedef struct fl_model_report_s {
    long commands;      /* flush records read from commands */
    long outcomes;      /* outcome records read from events */
    long applied_cmds;  /* commands applied in the model */
    long mismatches;    /* outcomes differing from the model (first ones printed) */
    long missing;       /* model outcomes with no event */
    long extra;         /* events with no model outcome (e.g. applied twice) */
    long gaps;          /* per-document version discontinuities in events */
    long docs;
} fl_model_report_t;

/* Builds the model from commands and compares events. NULL on I/O error. */
fl_model_t *fl_model_check(const char *bootstrap, const char *prefix, fl_model_report_t *rep);
/* The model's document (NULL when it saw none with that id). */
fl_doc_t *fl_model_doc(fl_model_t *m, const char *id);
/* Compares the newest snapshot of every model document with the model's
 * digest and version; returns the number that differ or are missing. */
long fl_model_check_snapshots(fl_model_t *m, const char *bootstrap, const char *prefix);
void fl_model_free(fl_model_t *m);

#endif
