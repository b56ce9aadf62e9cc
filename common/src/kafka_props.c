/* SPDX-License-Identifier: Apache-2.0 */
/* kafka_props: see kafka_props.h. */
#include "flushline/kafka_props.h"

#include <string.h>

int fl_kafka_props_add(fl_kafka_props_t *props, const char *name, const char *value)
{
    if (props->count >= sizeof props->names / sizeof props->names[0])
        return -1;
    props->names[props->count] = name;
    props->values[props->count] = value;
    props->count++;
    return 0;
}

bool fl_kafka_is_secret(const char *name)
{
    return strstr(name, "password") || strstr(name, "secret") || strstr(name, ".pem") ||
           strstr(name, "sasl.oauthbearer.config");
}
