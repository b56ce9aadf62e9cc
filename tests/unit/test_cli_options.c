/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `flushline` subcommands' option tables (cli.h): every table loads its
 * own defaults; docs/cli.md carries each table's --help-markdown between
 * markers (FL_UPDATE_DOCS=1 rewrites them); the binary prints the same
 * tables and its --help; and the usage errors, environment rules and option
 * forms the tables declare hold in the binary (exit 2 before any Kafka or
 * gateway is contacted, so no broker is needed).
 */
#include <stdalign.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "fl_proc.h"
#include "fl_test.h"
#include "flushline/log.h"

/* ---- running the binary ---- */

typedef struct run_s {
    int status;
    char *out; /* stdout and stderr */
} run_t;

/* Runs bin/flushline with args (NULL-terminated); its output in r->out. */
static void run_args(run_t *r, const char *const *args)
{
    static int n;
    char log[1024];
    size_t len;
    fl_proc_t proc;
    snprintf(log, sizeof log, "%s/tests/cli_options_%d_%d.log", getenv("FL_BINARY_DIR"),
             (int)getpid(), n++);
    unlink(log);
    r->out = NULL;
    r->status = -1;
    if (fl_proc_start(&proc, "flushline", args, log) != 0)
        return;
    r->status = fl_proc_wait(&proc, 60000);
    if (r->status < 0)
        fl_proc_kill(&proc);
    r->out = fl_test_read_file(log, &len);
    unlink(log);
}

#define CLI(r, ...)                                                                                \
    do {                                                                                           \
        const char *cli_args_[] = {__VA_ARGS__, NULL};                                             \
        run_args((r), cli_args_);                                                                  \
        if (!(r)->out)                                                                             \
            FL_FAIL_("flushline %s: no output file", cli_args_[0]);                                \
    } while (0)

/* Expects exit status want and needle in the output. */
#define EXPECT(r, want, needle)                                                                    \
    do {                                                                                           \
        if ((r)->status != (want) || !strstr((r)->out, (needle))) {                                \
            fprintf(stderr, "output: %s\n", (r)->out);                                             \
            free((r)->out);                                                                        \
            FL_FAIL_("expected exit %d and \"%s\", got exit %d", (want), (needle), (r)->status);   \
        }                                                                                          \
        free((r)->out);                                                                            \
    } while (0)

static char *markdown(const fl_config_table_t *table)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    fl_config_print_markdown(table, fp);
    fclose(fp);
    return buf;
}

/* "flushline token mint" -> {"token", "mint", extra, NULL} */
static void program_args(const fl_config_table_t *table, char *words, size_t size,
                         const char **args, const char *extra)
{
    int n = 0;
    snprintf(words, size, "%s", table->program + strlen("flushline "));
    for (char *w = strtok(words, " "); w; w = strtok(NULL, " "))
        args[n++] = w;
    args[n++] = extra;
    args[n] = NULL;
}

/* ---- the tables ---- */

static void test_tables_load_defaults(void)
{
    /* every table's defaults parse (a bad default is a bug in the table) */
    static union {
        max_align_t align;
        char bytes[8192];
    } target;
    char err[512];
    size_t n = 0;
    for (const fl_config_table_t *const *t = fl_cli_tables; *t; t++, n++) {
        fl_config_t *cfg = fl_config_new(*t, &target, err, sizeof err);
        if (!cfg)
            FL_FAIL_("%s: %s", (*t)->program, err);
        ASSERT_TRUE((*t)->cli);
        ASSERT_TRUE(strncmp((*t)->program, "flushline ", 10) == 0);
        fl_config_free(cfg);
    }
    /* topics, token keygen/mint/verify, replay, at, verify, reprocess, tail, bench,
     * rules put/get/list/check */
    ASSERT_EQ(n, 14);
}

/* docs/cli.md holds each table's --help-markdown between markers. */
static void test_docs_current(void)
{
    const char *rel = "docs/cli.md";
    size_t len;
    char *doc = fl_test_read_file(fl_test_source_path(rel), &len);
    bool update = getenv("FL_UPDATE_DOCS") != NULL, changed = false;
    ASSERT_TRUE(doc != NULL);
    for (const fl_config_table_t *const *t = fl_cli_tables; *t; t++) {
        char begin[128], end[128], *want = markdown(*t);
        snprintf(begin, sizeof begin, "<!-- BEGIN %s --help-markdown -->\n", (*t)->program);
        snprintf(end, sizeof end, "<!-- END %s --help-markdown -->", (*t)->program);
        char *b = strstr(doc, begin), *e = b ? strstr(b, end) : NULL;
        if (!b || !e) {
            free(want);
            free(doc);
            FL_FAIL_("%s: no %s ... %s markers", rel, begin, end);
        }
        b += strlen(begin);
        if ((size_t)(e - b) == strlen(want) && memcmp(b, want, strlen(want)) == 0) {
            free(want);
            continue;
        }
        if (!update) {
            free(want);
            free(doc);
            FL_FAIL_("%s: the options of `%s` differ from its --help-markdown (regenerate: "
                     "FL_UPDATE_DOCS=1 %s/tests/unit_test_cli_options)",
                     rel, (*t)->program, getenv("FL_BINARY_DIR"));
        }
        size_t off = (size_t)(b - doc), rest = strlen(e);
        char *nd = malloc(off + strlen(want) + rest + 1);
        ASSERT_TRUE(nd != NULL);
        memcpy(nd, doc, off);
        memcpy(nd + off, want, strlen(want));
        memcpy(nd + off + strlen(want), e, rest + 1);
        free(want);
        free(doc);
        doc = nd;
        changed = true;
    }
    if (changed) {
        FILE *fp = fopen(fl_test_source_path(rel), "w");
        ASSERT_TRUE(fp != NULL);
        fputs(doc, fp);
        fclose(fp);
        printf("  %s rewritten\n", rel);
    }
    free(doc);
}

/* The binary prints the very tables (the hidden --help-markdown) and its
 * help from them. */
static void test_binary_prints_tables(void)
{
    for (const fl_config_table_t *const *t = fl_cli_tables; *t; t++) {
        const char *args[8];
        char words[128], usage[160];
        char *want = markdown(*t);
        run_t r;
        program_args(*t, words, sizeof words, args, "--help-markdown");
        run_args(&r, args);
        if (r.status != 0 || !r.out || strcmp(r.out, want) != 0) {
            fprintf(stderr, "got:\n%s\nwant:\n%s\n", r.out ? r.out : "(none)", want);
            free(r.out);
            free(want);
            FL_FAIL_("%s --help-markdown: exit %d", (*t)->program, r.status);
        }
        free(r.out);
        free(want);

        program_args(*t, words, sizeof words, args, "--help");
        run_args(&r, args);
        snprintf(usage, sizeof usage, "usage: %s", (*t)->program);
        ASSERT_TRUE(r.out != NULL);
        EXPECT(&r, 0, usage);
    }
}

/* ---- what the tables declare, seen from the command line ---- */

static void test_usage_errors(void)
{
    run_t r;
    CLI(&r, "topics", "frobnicate");
    EXPECT(&r, 2, "invalid value \"frobnicate\" for <action>: expected one of: create, describe");
    CLI(&r, "topics");
    EXPECT(&r, 2, "missing argument <action>");
    CLI(&r, "topics", "create", "describe");
    EXPECT(&r, 2, "unexpected argument \"describe\"");
    CLI(&r, "topics", "describe", "--partitions", "0");
    EXPECT(&r, 2, "for --partitions: expected a decimal integer in 1..10000");
    CLI(&r, "at", "--doc", "a/b", "--version", "1", "--time", "5");
    EXPECT(&r, 2, "--version and --time exclude each other");
    CLI(&r, "at", "--doc", "a/b");
    EXPECT(&r, 2, "give one of --version or --time");
    CLI(&r, "at", "--version", "1");
    EXPECT(&r, 2, "missing required option --doc");
    CLI(&r, "at", "--doc", "a/b", "--version", "-1");
    EXPECT(&r, 2, "for --version: expected a decimal integer in >= 0");
    CLI(&r, "at", "--doc", "a/b", "--version", "1", "--format", "yaml");
    EXPECT(&r, 2, "for --format: expected one of: json");
    CLI(&r, "replay", "--from-time", "yesterday");
    EXPECT(&r, 2, "invalid value \"yesterday\" for --from-time");
    CLI(&r, "replay", "--to-offset", "0:1", "--to-time", "5");
    EXPECT(&r, 2, "--to-offset and --to-time exclude each other");
    CLI(&r, "replay", "stray");
    EXPECT(&r, 2, "unexpected argument \"stray\"");
    CLI(&r, "replay", "--state", "true"); /* a switch never takes the next word */
    EXPECT(&r, 2, "unexpected argument \"true\"");
    CLI(&r, "replay", "--frm-time", "5");
    EXPECT(&r, 2, "unknown option --frm-time; did you mean --from-time?");
    CLI(&r, "replay", "-X", "fetch.wait.max.ms=soon");
    EXPECT(&r, 2, "fetch.wait.max.ms=soon");
    CLI(&r, "replay", "-X", "linger.ms");
    EXPECT(&r, 2, "flag -X expects name=value");
    CLI(&r, "verify", "--doc", "");
    EXPECT(&r, 2, "a document id takes 1-255 bytes");
    CLI(&r, "verify", "--config", "x.conf"); /* the CLI reads no config file */
    EXPECT(&r, 2, "unknown option --config");
    CLI(&r, "tail", "--doc", "a/b", "--from-version", "3", "--from-time", "5");
    EXPECT(&r, 2, "--from-version and --from-time exclude each other");
    CLI(&r, "tail", "--doc", "a/b", "--count", "many");
    EXPECT(&r, 2, "for --count");
    CLI(&r, "reprocess", "--from-offset", "0:1");
    EXPECT(&r, 2, "missing required option --to-prefix");
    CLI(&r, "reprocess", "--to-prefix", "flushline");
    EXPECT(&r, 2, "--to-prefix must differ from --prefix");
    CLI(&r, "reprocess", "--to-prefix", "new", "--max-state-bytes", "1000");
    EXPECT(&r, 2, "for --max-state-bytes");
    CLI(&r, "bench", "--gateway", "a:1", "--token", "t", "--key", "k");
    EXPECT(&r, 2, "--token and --key exclude each other");
    CLI(&r, "bench", "--gateway", "a:1");
    EXPECT(&r, 2, "give one of --token or --key");
    CLI(&r, "bench", "--token", "t");
    EXPECT(&r, 2, "missing required option --gateway");
    CLI(&r, "bench", "--gateway", "a:1", "--token", "t", "--duration", "5", "--flushes", "9");
    EXPECT(&r, 2, "--duration and --flushes exclude each other");
    CLI(&r, "bench", "--gateway", "a:1", "--token", "t", "--contention", "zipf:20");
    EXPECT(&r, 2, "for --contention");
    CLI(&r, "bench", "--gateway", "a:1", "--token", "t", "--rate", "fast");
    EXPECT(&r, 2, "invalid value \"fast\" for --rate: expected a number in 0..10000000");
    CLI(&r, "bench", "--gateway", "nonsense", "--token", "t");
    EXPECT(&r, 2, "bad --gateway \"nonsense\"");
    CLI(&r, "bench", "--gateway", "a:1", "--token", "t", "--bootstrap", "k:9092");
    EXPECT(&r, 2, "unknown option --bootstrap"); /* bench does not talk to Kafka */
    CLI(&r, "token", "keygen", "--type", "rsa", "--out", "x");
    EXPECT(&r, 2, "for --type: expected one of: ed25519, hs256");
    CLI(&r, "token", "mint", "--key", "k", "--sub", "a", "--ttl", "1.5s");
    EXPECT(&r, 2, "for --ttl: must be whole seconds");
    CLI(&r, "token", "verify", "--keys", "k", "--leeway", "2h");
    EXPECT(&r, 2, "for --leeway");
    CLI(&r, "token", "verify", "--keys", "k", "tok1", "tok2");
    EXPECT(&r, 2, "unexpected argument \"tok2\"");
}

/* Only --bootstrap and --prefix read the environment (empty = unset); a
 * deployment's FLUSHLINE_CONFIG and other FLUSHLINE_* variables, meant for
 * the daemons, do not reach the CLI. */
static void test_environment(void)
{
    run_t r;
    setenv("FLUSHLINE_PREFIX", "same", 1);
    CLI(&r, "reprocess", "--to-prefix", "same");
    EXPECT(&r, 2, "--to-prefix must differ from --prefix");
    setenv("FLUSHLINE_PREFIX", "", 1);
    CLI(&r, "reprocess", "--to-prefix", "flushline");
    EXPECT(&r, 2, "--to-prefix must differ from --prefix");
    unsetenv("FLUSHLINE_PREFIX");
    setenv("FLUSHLINE_DOC", "a/b", 1);
    CLI(&r, "tail");
    EXPECT(&r, 2, "missing required option --doc");
    unsetenv("FLUSHLINE_DOC");
    setenv("FLUSHLINE_CONFIG", "/nonexistent/flushline.conf", 1);
    CLI(&r, "reprocess", "--to-prefix", "flushline");
    EXPECT(&r, 2, "--to-prefix must differ from --prefix");
    unsetenv("FLUSHLINE_CONFIG");
}

/* Token durations keep counting in seconds; --read repeats up to 32 times. */
static void test_token_options(void)
{
    char dir[] = "/tmp/fl_cli_options_XXXXXX", key[64], tok[2048], now[32];
    run_t r;
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(key, sizeof key, "%s/k", dir);
    CLI(&r, "token", "keygen", "--type", "HS256", "--out", key);
    EXPECT(&r, 0, "hs256 signing key");

    CLI(&r, "token", "mint", "--key", key, "--sub", "alice", "--read", "acme/", "--read",
        "beta/", "--write", "acme/board-1", "--ttl", "90", "--nbf-in", "1m", "--now", "1000");
    ASSERT_EQ(r.status, 0);
    snprintf(tok, sizeof tok, "%s", r.out);
    free(r.out);
    tok[strcspn(tok, "\n")] = '\0';

    snprintf(now, sizeof now, "%d", 1000 + 60);
    CLI(&r, "token", "verify", "--keys", key, "--now", now, "--leeway", "0", tok);
    ASSERT_TRUE(r.status == 0 && strstr(r.out, "\"exp\": 1090") && strstr(r.out, "\"nbf\": 1060"));
    ASSERT_TRUE(strstr(r.out, "\"acme/\",\n    \"beta/\"") != NULL);
    ASSERT_TRUE(strstr(r.out, "\"acme/board-1\"") != NULL);
    free(r.out);
    CLI(&r, "token", "verify", "--keys", key, "--now", "1091", "--leeway", "0", tok);
    EXPECT(&r, 1, "expired");
    CLI(&r, "token", "verify", "--keys", key, "--now", "1091", "--leeway", "2s", tok);
    EXPECT(&r, 0, "\"sub\": \"alice\"");

    {
        const char *args[48];
        int n = 0;
        args[n++] = "token";
        args[n++] = "mint";
        args[n++] = "--key";
        args[n++] = key;
        args[n++] = "--sub";
        args[n++] = "a";
        for (int i = 0; i < 33; i++)
            args[n++] = "--read=acme/"; /* one word each: fl_proc passes up to 62 */
        args[n] = NULL;
        run_args(&r, args);
        ASSERT_TRUE(r.out != NULL);
        EXPECT(&r, 2, "at most 32 values");
    }
    unlink(key);
    rmdir(dir);
}

/* Switches and their --no- forms, -q: parsed, so bench goes on to connect
 * (and fails to: nothing listens on the port). */
static void test_switches(void)
{
    char gw[32];
    run_t r;
    snprintf(gw, sizeof gw, "127.0.0.1:%d", fl_free_port());
    CLI(&r, "bench", "--gateway", gw, "--token", "t", "--flushes", "1", "--connect-timeout",
        "0.5", "--no-pacing", "--json", "-q");
    EXPECT(&r, 1, gw);
    CLI(&r, "bench", "--gateway", gw, "--token", "t", "--pacing=maybe");
    EXPECT(&r, 2, "for --pacing");
}

int main(void)
{
    fl_log_init("test", FL_LOG_WARN);
    unsetenv("FLUSHLINE_PREFIX");
    unsetenv("FLUSHLINE_BOOTSTRAP");
    unsetenv("FLUSHLINE_CONFIG");
    RUN(test_tables_load_defaults);
    RUN(test_docs_current);
    RUN(test_binary_prints_tables);
    RUN(test_usage_errors);
    RUN(test_environment);
    RUN(test_token_options);
    RUN(test_switches);
    return fl_test_done();
}
