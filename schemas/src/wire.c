/* SPDX-License-Identifier: Apache-2.0 */
/* wire: the message and record codec (work in progress). */
#include "flushline/value.h"
