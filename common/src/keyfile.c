/* SPDX-License-Identifier: Apache-2.0 */
/* keyfile: see keyfile.h. */
#include "flushline/errors.h"
#include "flushline/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fl_jwt_keyfile_read(const char *path, fl_jwt_keyfile_t **out, char *errstr,
                        size_t errstr_size)
{
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int fd = -1, rc;

    *out = NULL;
    if (sodium_init() < 0) {
        fl_errstr(errstr, errstr_size, "libsodium failed to initialise");
        return -EINVAL;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        fl_errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > FL_JWT_KEYFILE_MAX) {
        rc = -EINVAL;
        fl_errstr(errstr, errstr_size, "%s: not a regular file of at most %d bytes", path,
               FL_JWT_KEYFILE_MAX);
        goto fail;
    }
    text = sodium_malloc((size_t)st.st_size + 1);
    if (!text) {
        rc = -ENOMEM;
        fl_errstr(errstr, errstr_size, "out of memory");
        goto fail;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, text + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EINVAL;
            fl_errstr(errstr, errstr_size, "%s: %s", path, r < 0 ? strerror(errno) : "short read");
            goto fail;
        }
        len += (size_t)r;
    }
    rc = fl_jwt_keyfile_parse(text, len, out, errstr, errstr_size);
    if (rc != 0 && errstr && errstr_size) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s", errstr);
        fl_errstr(errstr, errstr_size, "%s: %s", path, reason);
    }
fail:
    sodium_free(text);
    if (fd >= 0)
        close(fd);
    return rc;
}


int fl_jwt_keys_load_file(fl_jwt_keys_t *keys, const char *path, char *errstr, size_t errstr_size)
{
    fl_jwt_keyfile_t *kf = NULL;
    char reason[256];
    int rc;
    if (!keys || !path) {
        fl_errstr(errstr, errstr_size, "missing argument");
        return -EINVAL;
    }
    rc = fl_jwt_keyfile_read(path, &kf, errstr, errstr_size);
    if (rc != 0)
        return rc;
    rc = fl_jwt_keys_add_keyfile(keys, kf, reason, sizeof reason);
    if (rc != 0)
        fl_errstr(errstr, errstr_size, "%s: %s", path, reason);
    fl_jwt_keyfile_free(kf);
    return rc;
}

int fl_jwt_keys_load_list(fl_jwt_keys_t *keys, const char *paths, char *errstr,
                          size_t errstr_size)
{
    char path[PATH_MAX];
    const char *p = paths;
    int loaded = 0;
    if (!keys || !paths) {
        fl_errstr(errstr, errstr_size, "missing argument");
        return -EINVAL;
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        while (n > 0 && (p[0] == ' ' || p[0] == '\t'))
            p++, n--;
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n >= sizeof path) {
            fl_errstr(errstr, errstr_size, "key file path too long");
            return -ENAMETOOLONG;
        }
        if (n > 0) {
            int rc;
            memcpy(path, p, n);
            path[n] = '\0';
            rc = fl_jwt_keys_load_file(keys, path, errstr, errstr_size);
            if (rc != 0)
                return rc;
            loaded++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (loaded == 0) {
        fl_errstr(errstr, errstr_size, "no key file named");
        return -EINVAL;
    }
    return 0;
}
