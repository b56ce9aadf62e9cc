/* SPDX-License-Identifier: Apache-2.0 */
/* part_int: what part.c shares with task.c only. */
#ifndef FL_PART_INT_H
#define FL_PART_INT_H

#include "flushline/part.h"

/* After an outcome moved ent: marks the partition snapshot-due when ent is
 * snapshot_every_versions past its last snapshot. */
void fl_part_note_applied(fl_part_t *part, const fl_part_doc_t *ent);

/* Whether documents keep a window of outcomes (window_outcomes > 0). */
bool fl_part_windowed(const fl_part_t *part);

#endif
