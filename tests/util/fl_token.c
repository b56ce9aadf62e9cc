/* SPDX-License-Identifier: Apache-2.0 */
/* Test tokens; see fl_token.h. */
#include "fl_token.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "fl_test.h"

char *fl_token_mint(fl_jwt_keyfile_t *key, const char *sub, const char *read, const char *write,
                    int64_t exp_in)
{
    char claims[1024], errstr[256], *tok = NULL;
    int64_t now = (int64_t)time(NULL);
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld,\"read\":[%s],\"write\":[%s]}", sub,
             (long long)(now + exp_in), (long long)now, read, write);
    if (fl_jwt_mint_keyfile(key, claims, &tok, errstr, sizeof errstr) != 0)
        fprintf(stderr, "mint: %s\n", errstr);
    return tok;
}

int fl_token_keyfile(const char *stem, char *path, size_t size, fl_jwt_keyfile_t **key)
{
    char errstr[256], text[2048], name[96];
    long n;
    FILE *fp;
    snprintf(path, size, "%s/tests/%s.key", getenv("FL_BINARY_DIR"),
             fl_test_unique(stem, name, sizeof name));
    if (fl_jwt_keyfile_generate(FL_JWT_EDDSA, "k1", key, errstr, sizeof errstr) != 0)
        return -1;
    if ((n = fl_jwt_keyfile_format(*key, false, text, sizeof text)) < 0 || !(fp = fopen(path, "w")))
        return -1;
    fwrite(text, 1, (size_t)n, fp);
    fclose(fp);
    return 0;
}
