/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every error code of errors.h (schemas/PROTOCOL.md section 6) is produced
 * by at least one vector under schemas/vectors/: as an engine result or flush
 * code, as the expected "error" of a message case, or (codes only the gateway
 * produces) as the code of a nack/error message case. key_exists is reserved
 * and never sent. The same files are the JS client's conformance suite.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fl_test.h"
#include "flushline/errors.h"

static int seen[FL_CODE__COUNT];

static void mark_name(const char *name)
{
    int code = fl_code_from_name(name, strlen(name));
    if (code > 0 && code < FL_CODE__COUNT)
        seen[code] = 1;
}

/* Walks a JSON value: a string under "code" or "error" names a code; an
 * integer "code" of a nack or error message is one. */
static void walk(json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    if (json_is_object(v)) {
        json_t *t = json_object_get(v, "t");
        bool msg = json_is_string(t) && (!strcmp(json_string_value(t), "nack") ||
                                         !strcmp(json_string_value(t), "error"));
        json_object_foreach(v, key, item)
        {
            if ((!strcmp(key, "code") || !strcmp(key, "error")) && json_is_string(item))
                mark_name(json_string_value(item));
            else if (msg && !strcmp(key, "code") && json_is_integer(item) &&
                     json_integer_value(item) > 0 && json_integer_value(item) < FL_CODE__COUNT)
                seen[json_integer_value(item)] = 1;
            walk(item);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item) walk(item);
    }
}

static int scan_dir(const char *rel)
{
    DIR *d = opendir(fl_test_source_path(rel));
    struct dirent *e;
    int files = 0;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        char path[1024];
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", fl_test_source_path(rel), e->d_name);
        json_t *root = json_load_file(path, JSON_ALLOW_NUL, NULL); /* vectors hold U+0000 */
        if (!root) {
            closedir(d);
            return -1;
        }
        walk(root);
        json_decref(root);
        files++;
    }
    closedir(d);
    return files;
}

static void test_every_code_has_a_vector(void)
{
    ASSERT_GT(scan_dir("schemas/vectors/engine"), 0);
    ASSERT_GT(scan_dir("schemas/vectors/messages"), 0);
    ASSERT_GT(scan_dir("schemas/vectors/rules"), 0);
    for (int code = 1; code < FL_CODE__COUNT; code++) {
        const char *name = fl_code_name(code);
        if (code == FL_CODE_KEY_EXISTS || !strcmp(name, "unknown"))
            continue; /* reserved, or a gap in the numbering */
        if (!seen[code])
            FL_FAIL_("error code %d (%s) is produced by no vector", code, name);
    }
}

int main(void)
{
    RUN(test_every_code_has_a_vector);
    return fl_test_done();
}
