/* SPDX-License-Identifier: Apache-2.0 */
/*
 * gw_url: document ids in URLs (docs/gateway.md). The id is everything
 * after "/v1/docs/" (for POST, before the one final "/flush"), taken from
 * the request line as it came, never from lws's normalised copy.
 *
 * @locality any thread (pure functions).
 */
#ifndef GW_URL_H
#define GW_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A document id from the raw path after "/v1/docs/" (len bytes, no query):
 * percent-decoded into out (FL_DOC_ID_MAX bytes). 0 with *outlen, or -1
 * with *why: a byte that must be percent-encoded, a bad escape, an empty,
 * "." or ".." segment, a control byte or NUL, invalid UTF-8, 0 or more
 * than 255 bytes. */
int gw_url_doc_id(const char *path, size_t len, char *out, size_t *outlen, const char **why);

/* Checks a /v1/docs/... request (path/plen without the query; method GET
 * or POST): 0 with the id in doc (FL_DOC_ID_MAX bytes), or the HTTP status
 * of its refusal (400, 404, 405) with its fl_code_t and reason. A POST
 * takes no query; a GET's query is for gw_history_target to read. */
int gw_url_docs_target(const char *method, const char *path, size_t plen, bool has_query,
                       char *doc, size_t *doclen, uint16_t *code, char *reason, size_t rsize);

#endif
