/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for config: precedence (default < file < env < flag), every
 * error message (unknown keys with their source and a suggestion, bad values
 * with the rule, syntax, missing file, missing required), kafka.*
 * pass-through, help/Markdown/dump output, and the duration and size parsers'
 * edge cases; then the features command-line tools use (table.cli: positional
 * arguments, lists, switches, short aliases, groups, seconds and number types,
 * the environment only where an entry asks, no config file).
 */
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/config.h"

typedef struct app_conf_s {
    const char *bootstrap;
    const char *topic_prefix;
    int64_t partitions;
    bool tls;
    int64_t commit_interval_ms;
    int64_t max_doc_bytes;
    int mode;
    const char *token_secret;
    const char *listen;
} app_conf_t;

static int check_listen(const void *field, char *errstr, size_t errstr_size)
{
    const char *s = *(const char *const *)field;
    if (!strchr(s, ':')) {
        snprintf(errstr, errstr_size, "must be host:port");
        return -1;
    }
    return 0;
}

static const char *const modes[] = {"fast", "safe", NULL};

static const fl_config_entry_t entries[] = {
    {.name = "bootstrap", .type = FL_CONFIG_STRING, .doc = "Kafka bootstrap servers.",
     .offset = offsetof(app_conf_t, bootstrap), .flags = FL_CONFIG_REQUIRED},
    {.name = "topic.prefix", .type = FL_CONFIG_STRING, .def = "flushline",
     .doc = "Prefix of every topic name.", .offset = offsetof(app_conf_t, topic_prefix)},
    {.name = "partitions", .type = FL_CONFIG_INT, .def = "12", .doc = "Partitions per topic.",
     .offset = offsetof(app_conf_t, partitions), .min = 1, .max = 1024},
    {.name = "tls", .type = FL_CONFIG_BOOL, .def = "false", .doc = "Serve TLS.",
     .offset = offsetof(app_conf_t, tls)},
    {.name = "commit.interval.ms", .type = FL_CONFIG_DURATION_MS, .def = "100ms",
     .doc = "How often transactions commit.", .offset = offsetof(app_conf_t, commit_interval_ms),
     .min = 1, .max = 60000},
    {.name = "max.doc.bytes", .type = FL_CONFIG_SIZE, .def = "1M", .doc = "Largest document.",
     .offset = offsetof(app_conf_t, max_doc_bytes), .min = 1024, .max = 1LL << 30},
    {.name = "mode", .type = FL_CONFIG_ENUM, .def = "safe", .doc = "Apply mode | pipe.",
     .offset = offsetof(app_conf_t, mode), .choices = modes},
    {.name = "token.secret", .type = FL_CONFIG_STRING, .doc = "HS256 key.",
     .offset = offsetof(app_conf_t, token_secret), .flags = FL_CONFIG_SECRET},
    {.name = "listen", .type = FL_CONFIG_STRING, .def = "127.0.0.1:8080",
     .doc = "Address to listen on.", .offset = offsetof(app_conf_t, listen),
     .check = check_listen},
};

static const fl_config_table_t table = {
    .program = "flushline-test",
    .summary = "A test component.",
    .entries = entries,
    .count = FL_CONFIG_COUNT(entries),
    .kafka = true,
};

static const char *const env_vars[] = {
    "FLUSHLINE_CONFIG",         "FLUSHLINE_BOOTSTRAP",    "FLUSHLINE_TOPIC_PREFIX",
    "FLUSHLINE_PARTITIONS",     "FLUSHLINE_TLS",          "FLUSHLINE_COMMIT_INTERVAL_MS",
    "FLUSHLINE_MAX_DOC_BYTES",  "FLUSHLINE_MODE",         "FLUSHLINE_TOKEN_SECRET",
    "FLUSHLINE_LISTEN",         "FLUSHLINE_COMIT_INTERVAL_MS",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
}

/* Writes text to a new temp file; its path in a static buffer. */
static const char *temp_file(const char *text)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof path, "/tmp/fl_test_config_XXXXXX");
    fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        close(fd);
        return NULL;
    }
    close(fd);
    return path;
}

/* new + load with a NULL-terminated argv list; returns load's code. */
static int load(app_conf_t *conf, fl_config_t **cfgp, char *errstr, size_t size, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(conf, 0, sizeof *conf);
    *cfgp = fl_config_new(&table, conf, errstr, size);
    if (!*cfgp)
        return -100;
    return fl_config_load(*cfgp, argc, argv, errstr, size);
}

/* Loads and expects an error; returns the code with errstr filled. */
static int load_err(char *errstr, size_t size, char **argv)
{
    app_conf_t conf;
    fl_config_t *cfg;
    int r = load(&conf, &cfg, errstr, size, argv);
    fl_config_free(cfg);
    return r;
}

static char *dump(const fl_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    fl_config_dump(cfg, fp);
    fclose(fp);
    return buf;
}

static void test_defaults(void)
{
    app_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "";
    char *argv[] = {"prog", "--bootstrap", "k:9092", NULL};

    clear_env();
    ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), 0);
    ASSERT_STR_EQ(conf.bootstrap, "k:9092");
    ASSERT_STR_EQ(conf.topic_prefix, "flushline");
    ASSERT_EQ(conf.partitions, 12);
    ASSERT_EQ(conf.tls, false);
    ASSERT_EQ(conf.commit_interval_ms, 100);
    ASSERT_EQ(conf.max_doc_bytes, 1 << 20);
    ASSERT_EQ(conf.mode, 1);
    ASSERT_TRUE(conf.token_secret == NULL);
    ASSERT_STR_EQ(conf.listen, "127.0.0.1:8080");
    ASSERT_EQ(fl_config_kafka(cfg)->count, 0);
    ASSERT_TRUE(fl_config_file(cfg) == NULL);
    fl_config_free(cfg);
    /* free clears the string fields it owned */
    ASSERT_TRUE(conf.bootstrap == NULL && conf.topic_prefix == NULL && conf.listen == NULL);
}

static void test_precedence(void)
{
    app_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "", cfgflag[128], *text;
    const char *path = temp_file("# comment line\n"
                                 "\n"
                                 "  commit.interval.ms = 200  \n"
                                 "partitions=16\n"
                                 "topic.prefix = \"  spaced  \"\n"
                                 "max.doc.bytes = 2M\r\n"
                                 "bootstrap = from-file:9092\n"
                                 "token.secret = s3cret\n");
    ASSERT_TRUE(path != NULL);
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    clear_env();
    setenv("FLUSHLINE_COMMIT_INTERVAL_MS", "300", 1);
    setenv("FLUSHLINE_PARTITIONS", "20", 1);
    setenv("FLUSHLINE_TLS", "yes", 1);
    {
        char *argv[] = {"prog", "--commit.interval.ms", "4s", cfgflag, "--no-tls", NULL};
        ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), 0);
    }
    ASSERT_EQ(conf.commit_interval_ms, 4000);          /* flag > env > file */
    ASSERT_EQ(conf.partitions, 20);                    /* env > file */
    ASSERT_STR_EQ(conf.topic_prefix, "  spaced  ");    /* file > default, quotes kept blanks */
    ASSERT_EQ(conf.max_doc_bytes, 2 << 20);            /* file, CRLF tolerated */
    ASSERT_STR_EQ(conf.bootstrap, "from-file:9092");
    ASSERT_EQ(conf.tls, false);                        /* --no-tls > env yes */
    ASSERT_EQ(conf.mode, 1);                           /* default */
    ASSERT_STR_EQ(fl_config_file(cfg), path);

    text = dump(cfg);
    {
        char want[2048];
        snprintf(want, sizeof want,
                 "bootstrap = from-file:9092  # file %s:7\n"
                 "topic.prefix =   spaced    # file %s:5\n"
                 "partitions = 20  # env FLUSHLINE_PARTITIONS\n"
                 "tls = false  # flag --no-tls\n"
                 "commit.interval.ms = 4s  # flag --commit.interval.ms\n"
                 "max.doc.bytes = 2M  # file %s:6\n"
                 "mode = safe  # default\n"
                 "token.secret = (set)  # file %s:8\n"
                 "listen = 127.0.0.1:8080  # default\n",
                 path, path, path, path);
        ASSERT_STR_EQ(text, want);
    }
    free(text);
    fl_config_free(cfg);

    /* the config file can also come from the environment */
    setenv("FLUSHLINE_CONFIG", path, 1);
    unsetenv("FLUSHLINE_PARTITIONS");
    {
        char *argv[] = {"prog", NULL};
        ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), 0);
    }
    ASSERT_EQ(conf.partitions, 16);
    ASSERT_EQ(conf.commit_interval_ms, 300);
    fl_config_free(cfg);
    clear_env();
    unlink(path);
}

static void test_flags_forms(void)
{
    app_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "", **args;
    int nargs;
    char *argv[] = {"prog",    "topics",   "--tls",   "create",   "--partitions=3", "--mode",
                    "FAST",    "--tls",    "false",   "-",        "--bootstrap",   "b",
                    "--",      "--tls",    NULL};

    clear_env();
    ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), 0);
    ASSERT_EQ(conf.partitions, 3);
    ASSERT_EQ(conf.mode, 0);     /* enum matching ignores case */
    ASSERT_EQ(conf.tls, false);  /* "--tls false": a bool takes a following bool word */
    args = fl_config_args(cfg, &nargs);
    ASSERT_EQ(nargs, 4);
    ASSERT_STR_EQ(args[0], "topics");
    ASSERT_STR_EQ(args[1], "create");
    ASSERT_STR_EQ(args[2], "-");
    ASSERT_STR_EQ(args[3], "--tls"); /* after "--" */
    fl_config_free(cfg);

    {
        char *argv2[] = {"prog", "--bootstrap=b", "--tls", NULL};
        ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv2), 0);
        ASSERT_EQ(conf.tls, true); /* a lone bool flag is true */
        /* set from code, as tools do */
        ASSERT_EQ(fl_config_set(cfg, "partitions", "7", err, sizeof err), 0);
        ASSERT_EQ(conf.partitions, 7);
        ASSERT_EQ(fl_config_set(cfg, "partitions", "0", err, sizeof err), FL_CONFIG_EVALUE);
        ASSERT_EQ(conf.partitions, 7); /* a rejected value leaves the old one */
        fl_config_free(cfg);
    }
}

static void test_errors(void)
{
    char err[512];
    const char *path;

    clear_env();
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--comit.interval.ms", "5", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown setting \"comit.interval.ms\" (from flag --comit.interval.ms); "
                           "did you mean \"commit.interval.ms\"?");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--wibble", "5", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown setting \"wibble\" (from flag --wibble); see --help");
    }
    {
        char *argv[] = {"prog", "-q", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown setting \"q\" (from flag -q); see --help");
    }
    {
        /* a librdkafka name without its prefix */
        char *argv[] = {"prog", "--bootstrap.servers=x", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown setting \"bootstrap.servers\" (from flag --bootstrap.servers); "
                           "did you mean \"kafka.bootstrap.servers\" (a librdkafka setting)?");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--partitions", "0", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"0\" for partitions (from flag --partitions): "
                           "expected a decimal integer in 1..1024");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--partitions", "12x", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--commit.interval.ms=2m", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"2m\" for commit.interval.ms (from flag "
                           "--commit.interval.ms): expected a duration such as 250ms, 1.5s, 2m "
                           "or 1h (a plain number is milliseconds) in 1ms..1m");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--max.doc.bytes", "12Q", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"12Q\" for max.doc.bytes (from flag --max.doc.bytes): "
                           "expected a size such as 512, 64K, 16M or 1G (K/M/G/T are multiples "
                           "of 1024) in 1K..1G");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--mode", "turbo", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"turbo\" for mode (from flag --mode): expected one of: "
                           "fast, safe");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--tls=maybe", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"maybe\" for tls (from flag --tls): expected true or "
                           "false (or yes/no, on/off, 1/0)");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--listen", "nocolon", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"nocolon\" for listen (from flag --listen): must be "
                           "host:port");
    }
    {
        /* secrets are not echoed in errors */
        char *argv[] = {"prog", "--bootstrap", "b", "--token.secret", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_ESYNTAX);
        ASSERT_STR_EQ(err, "flag --token.secret needs a value");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", NULL};
        setenv("FLUSHLINE_PARTITIONS", "many", 1);
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"many\" for partitions (from env FLUSHLINE_PARTITIONS): "
                           "expected a decimal integer in 1..1024");
        unsetenv("FLUSHLINE_PARTITIONS");
    }
    {
        /* an unknown variable is only warned about */
        char *argv[] = {"prog", "--bootstrap", "b", NULL};
        setenv("FLUSHLINE_COMIT_INTERVAL_MS", "5", 1);
        ASSERT_EQ(load_err(err, sizeof err, argv), 0);
        unsetenv("FLUSHLINE_COMIT_INTERVAL_MS");
    }
    {
        char *argv[] = {"prog", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EMISSING);
        ASSERT_STR_EQ(err, "missing required setting bootstrap (set --bootstrap, "
                           "FLUSHLINE_BOOTSTRAP or \"bootstrap = ...\" in the config file)");
    }
    {
        char *argv[] = {"prog", "--config", "/nonexistent/fl.conf", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EFILE);
        ASSERT_STR_EQ(err, "cannot read config file /nonexistent/fl.conf: No such file or "
                           "directory");
    }
    {
        char *argv[] = {"prog", "--config", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_ESYNTAX);
        ASSERT_STR_EQ(err, "flag --config needs a value");
    }
    {
        char want[512], *argv[] = {"prog", "--config", NULL, NULL};
        path = temp_file("bootstrap = b\n\ntopic.prefx = x\n");
        argv[2] = (char *)path;
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        snprintf(want, sizeof want,
                 "unknown setting \"topic.prefx\" (from file %s:3); did you mean "
                 "\"topic.prefix\"?",
                 path);
        ASSERT_STR_EQ(err, want);
        unlink(path);
    }
    {
        char want[512], *argv[] = {"prog", "--config", NULL, NULL};
        path = temp_file("# ok\njust some words\n");
        argv[2] = (char *)path;
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_ESYNTAX);
        snprintf(want, sizeof want, "file %s:2: expected \"name = value\", got \"just some words\"",
                 path);
        ASSERT_STR_EQ(err, want);
        unlink(path);
    }
    {
        char want[512], *argv[] = {"prog", "--config", NULL, NULL};
        path = temp_file("max.doc.bytes = 10\n");
        argv[2] = (char *)path;
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        snprintf(want, sizeof want,
                 "invalid value \"10\" for max.doc.bytes (from file %s:1): expected a size such "
                 "as 512, 64K, 16M or 1G (K/M/G/T are multiples of 1024) in 1K..1G",
                 path);
        ASSERT_STR_EQ(err, want);
        unlink(path);
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "-X", "no.such.thing=1", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown setting \"kafka.no.such.thing\" (from flag -X no.such.thing): "
                           "librdkafka has no setting \"no.such.thing\"");
    }
    {
        char *argv[] = {"prog", "--bootstrap", "b", "--kafka.linger.ms", "soon", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"soon\" for kafka.linger.ms (from flag "
                           "--kafka.linger.ms): Invalid value for configuration property "
                           "\"queue.buffering.max.ms\"");
    }
    {
        char *argv[] = {"prog", "-X", "linger.ms", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_ESYNTAX);
        ASSERT_STR_EQ(err, "flag -X expects name=value, got \"linger.ms\"");
    }
    {
        char *argv[] = {"prog", "-X", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv), FL_CONFIG_ESYNTAX);
        ASSERT_STR_EQ(err, "flag -X needs a value");
    }
    ASSERT_STR_EQ(fl_config_strerror(FL_CONFIG_EUNKNOWN), "unknown setting");
}

static void test_bad_default(void)
{
    static const fl_config_entry_t bad[] = {
        {.name = "n", .type = FL_CONFIG_INT, .def = "ten", .offset = 0},
    };
    static const fl_config_table_t t = {.entries = bad, .count = 1};
    int64_t v;
    char err[256];
    ASSERT_TRUE(fl_config_new(&t, &v, err, sizeof err) == NULL);
    ASSERT_STR_EQ(err, "invalid value \"ten\" for n (from default): expected a decimal integer");
    fl_config_free(NULL);
}

static void test_kafka_passthrough(void)
{
    app_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "", cfgflag[128], *text, want[1024];
    const fl_kafka_props_t *props;
    const char *path = temp_file("kafka.linger.ms = 5\n"
                                 "kafka.client.id = from-file\n"
                                 "kafka.sasl.password = hunter2\n");
    ASSERT_TRUE(path != NULL);
    snprintf(cfgflag, sizeof cfgflag, "--config=%s", path);
    clear_env();
    {
        char *argv[] = {"prog",       "--bootstrap",    "b",   cfgflag, "--kafka.client.id",
                        "from-flag",  "-Xacks=all",     "-X",  "queue.buffering.max.ms=7",
                        NULL};
        ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), 0);
    }
    props = fl_config_kafka(cfg);
    ASSERT_EQ(props->count, 5);
    ASSERT_STR_EQ(props->names[0], "linger.ms");
    ASSERT_STR_EQ(props->values[0], "5");
    ASSERT_STR_EQ(props->names[1], "client.id");
    ASSERT_STR_EQ(props->values[1], "from-flag"); /* flag over file, same slot */
    ASSERT_STR_EQ(props->names[2], "sasl.password");
    ASSERT_STR_EQ(props->values[2], "hunter2");
    ASSERT_STR_EQ(props->names[3], "acks");
    ASSERT_STR_EQ(props->values[3], "all");
    ASSERT_STR_EQ(props->names[4], "queue.buffering.max.ms");
    ASSERT_STR_EQ(props->values[4], "7");

    text = dump(cfg);
    snprintf(want, sizeof want,
             "kafka.linger.ms = 5  # file %s:1\n"
             "kafka.client.id = from-flag  # flag --kafka.client.id\n"
             "kafka.sasl.password = (set)  # file %s:3\n"
             "kafka.acks = all  # flag -X acks\n"
             "kafka.queue.buffering.max.ms = 7  # flag -X queue.buffering.max.ms\n",
             path, path);
    ASSERT_TRUE(strstr(text, want) != NULL);
    ASSERT_TRUE(strstr(text, "hunter2") == NULL);
    free(text);
    fl_config_free(cfg);
    unlink(path);

    /* a table without kafka refuses the keys */
    {
        static const fl_config_table_t nokafka = {.entries = entries,
                                                  .count = FL_CONFIG_COUNT(entries)};
        char *argv[] = {"prog", "--bootstrap", "b", "--kafka.acks=all", NULL};
        cfg = fl_config_new(&nokafka, &conf, err, sizeof err);
        ASSERT_TRUE(cfg != NULL);
        ASSERT_EQ(fl_config_load(cfg, 4, argv, err, sizeof err), FL_CONFIG_EUNKNOWN);
        fl_config_free(cfg);
    }
}

static void test_help_and_docs(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    fl_config_print_help(&table, fp);
    fclose(fp);
    ASSERT_TRUE(strstr(buf, "Usage: flushline-test [options]\n") != NULL);
    for (size_t i = 0; i < table.count; i++) {
        char flag[128], env[128];
        size_t n = (size_t)snprintf(env, sizeof env, "env FLUSHLINE_");
        snprintf(flag, sizeof flag, "\n  --%s", entries[i].name);
        for (const char *c = entries[i].name; *c; c++)
            env[n++] = *c == '.' ? '_' : (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
        env[n] = '\0';
        ASSERT_TRUE(strstr(buf, flag) != NULL);
        ASSERT_TRUE(strstr(buf, entries[i].doc) != NULL);
        ASSERT_TRUE(strstr(buf, env) != NULL);
    }
    ASSERT_TRUE(strstr(buf, "  --commit.interval.ms <duration>\n"
                            "      How often transactions commit.\n"
                            "      [default 100ms; range 1ms..1m; env "
                            "FLUSHLINE_COMMIT_INTERVAL_MS]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --tls[=<bool>], --no-tls\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --mode <fast|safe>\n") != NULL);
    ASSERT_TRUE(strstr(buf, "[default (none); required; env FLUSHLINE_BOOTSTRAP]") != NULL);
    ASSERT_TRUE(strstr(buf, "env FLUSHLINE_MAX_DOC_BYTES") != NULL);
    ASSERT_TRUE(strstr(buf, "--config <file>") != NULL);
    ASSERT_TRUE(strstr(buf, "-X <name>=<value>") != NULL);
    free(buf);

    buf = NULL;
    fp = open_memstream(&buf, &len);
    fl_config_print_markdown(&table, fp);
    fclose(fp);
    for (size_t i = 0; i < table.count; i++) {
        char cell[128];
        snprintf(cell, sizeof cell, "| `%s` |", entries[i].name);
        ASSERT_TRUE(strstr(buf, cell) != NULL);
    }
    ASSERT_TRUE(strstr(buf, "| `commit.interval.ms` | duration (ms), 1ms..1m | `100ms` | "
                            "`FLUSHLINE_COMMIT_INTERVAL_MS` | "
                            "How often transactions commit. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "Apply mode \\| pipe.") != NULL); /* cell-safe */
    free(buf);

    {
        app_conf_t conf;
        fl_config_t *cfg;
        char err[256];
        char *argv[] = {"prog", "--partitions", "bad", "--help", NULL};
        /* help wins even over a bad value; printed to stdout */
        ASSERT_EQ(load(&conf, &cfg, err, sizeof err, argv), FL_CONFIG_HELP);
        fl_config_free(cfg);
    }
}

static void test_duration_parsing(void)
{
    int64_t v;
    ASSERT_EQ(fl_config_parse_duration_ms("0", &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(fl_config_parse_duration_ms("250", &v), 0);
    ASSERT_EQ(v, 250);
    ASSERT_EQ(fl_config_parse_duration_ms("250ms", &v), 0);
    ASSERT_EQ(v, 250);
    ASSERT_EQ(fl_config_parse_duration_ms("1.5s", &v), 0);
    ASSERT_EQ(v, 1500);
    ASSERT_EQ(fl_config_parse_duration_ms("2m", &v), 0);
    ASSERT_EQ(v, 120000);
    ASSERT_EQ(fl_config_parse_duration_ms("1h", &v), 0);
    ASSERT_EQ(v, 3600000);
    ASSERT_EQ(fl_config_parse_duration_ms("1d", &v), 0);
    ASSERT_EQ(v, 86400000);
    ASSERT_EQ(fl_config_parse_duration_ms(" 10 S ", &v), 0);
    ASSERT_EQ(v, 10000);
    ASSERT_EQ(fl_config_parse_duration_ms("0.001s", &v), 0);
    ASSERT_EQ(v, 1);
    ASSERT_EQ(fl_config_parse_duration_ms("9223372036854775807", &v), 0);
    ASSERT_EQ(v, INT64_MAX);
    ASSERT_EQ(fl_config_parse_duration_ms("9223372036854775808", &v), -1); /* overflow */
    ASSERT_EQ(fl_config_parse_duration_ms("9223372036854775807s", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("0.0005s", &v), -1); /* not whole ms */
    ASSERT_EQ(fl_config_parse_duration_ms("1.5", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("-5s", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("s", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms(".s", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("5 years", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("5sec", &v), -1);
    ASSERT_EQ(fl_config_parse_duration_ms("1s2", &v), -1);
}

static void test_size_parsing(void)
{
    int64_t v;
    ASSERT_EQ(fl_config_parse_size("0", &v), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(fl_config_parse_size("512", &v), 0);
    ASSERT_EQ(v, 512);
    ASSERT_EQ(fl_config_parse_size("512B", &v), 0);
    ASSERT_EQ(v, 512);
    ASSERT_EQ(fl_config_parse_size("64K", &v), 0);
    ASSERT_EQ(v, 65536);
    ASSERT_EQ(fl_config_parse_size("64k", &v), 0);
    ASSERT_EQ(v, 65536);
    ASSERT_EQ(fl_config_parse_size("1KiB", &v), 0);
    ASSERT_EQ(v, 1024);
    ASSERT_EQ(fl_config_parse_size("1kb", &v), 0);
    ASSERT_EQ(v, 1024);
    ASSERT_EQ(fl_config_parse_size("1.5M", &v), 0);
    ASSERT_EQ(v, 1572864);
    ASSERT_EQ(fl_config_parse_size("1G", &v), 0);
    ASSERT_EQ(v, 1073741824);
    ASSERT_EQ(fl_config_parse_size("2T", &v), 0);
    ASSERT_EQ(v, 2199023255552LL);
    ASSERT_EQ(fl_config_parse_size("8388607T", &v), 0); /* 2^63 - 2^40 */
    ASSERT_EQ(v, 9223370937343148032LL);
    ASSERT_EQ(fl_config_parse_size("8388608T", &v), -1); /* 2^63: overflow */
    ASSERT_EQ(fl_config_parse_size("0.5K", &v), 0);
    ASSERT_EQ(v, 512);
    ASSERT_EQ(fl_config_parse_size("0.0001K", &v), -1); /* not whole bytes */
    ASSERT_EQ(fl_config_parse_size("-1K", &v), -1);
    ASSERT_EQ(fl_config_parse_size("1X", &v), -1);
    ASSERT_EQ(fl_config_parse_size("K", &v), -1);
    ASSERT_EQ(fl_config_parse_size("1KK", &v), -1);
    ASSERT_EQ(fl_config_parse_size("0x10", &v), -1);
}

static void test_bool_parsing(void)
{
    bool b = false;
    ASSERT_EQ(fl_config_parse_bool("TRUE", &b), 0);
    ASSERT_EQ(b, true);
    ASSERT_EQ(fl_config_parse_bool("off", &b), 0);
    ASSERT_EQ(b, false);
    ASSERT_EQ(fl_config_parse_bool("1", &b), 0);
    ASSERT_EQ(b, true);
    ASSERT_EQ(fl_config_parse_bool("", &b), -1);
    ASSERT_EQ(fl_config_parse_bool("2", &b), -1);
}

/* ---- command-line tool tables (table.cli) and the entry features they use ---- */

typedef struct tool_conf_s {
    int action;
    const char *file;
    const char *bootstrap;
    const char *doc;
    fl_config_list_t reads;
    int64_t version;
    const char *time;
    int64_t wait_ms;
    double rate;
    bool quiet, pacing, verbose;
} tool_conf_t;

static const char *const actions[] = {"create", "describe", NULL};

static int check_no_space(const void *field, char *errstr, size_t errstr_size)
{
    if (strchr(*(const char *const *)field, ' ')) {
        snprintf(errstr, errstr_size, "must not contain blanks");
        return -1;
    }
    return 0;
}

#define T(field) offsetof(tool_conf_t, field)

static const fl_config_entry_t tool_entries[] = {
    {.name = "action", .type = FL_CONFIG_ENUM, .choices = actions, .offset = T(action),
     .flags = FL_CONFIG_POSITIONAL | FL_CONFIG_REQUIRED, .doc = "What to do."},
    {.name = "file", .type = FL_CONFIG_STRING, .offset = T(file), .flags = FL_CONFIG_POSITIONAL,
     .doc = "An optional file."},
    {.name = "bootstrap", .type = FL_CONFIG_STRING, .def = "127.0.0.1:9092",
     .offset = T(bootstrap), .flags = FL_CONFIG_ENV, .doc = "Kafka."},
    {.name = "doc", .type = FL_CONFIG_STRING, .offset = T(doc), .metavar = "ID",
     .flags = FL_CONFIG_REQUIRED, .doc = "The document."},
    {.name = "read", .type = FL_CONFIG_STRING, .offset = T(reads), .flags = FL_CONFIG_LIST,
     .max = 3, .check = check_no_space, .metavar = "PREFIX", .doc = "A prefix | more."},
    {.name = "version", .type = FL_CONFIG_INT, .offset = T(version), .min = 0, .max = INT64_MAX,
     .group = 1, .flags = FL_CONFIG_REQUIRED, .doc = "A version."},
    {.name = "time", .type = FL_CONFIG_STRING, .offset = T(time), .group = 1,
     .flags = FL_CONFIG_REQUIRED, .doc = "A time."},
    {.name = "wait", .type = FL_CONFIG_DURATION_S, .def = "10", .offset = T(wait_ms), .min = 1,
     .max = 3600000, .doc = "How long."},
    {.name = "rate", .type = FL_CONFIG_DOUBLE, .def = "0", .offset = T(rate), .min = 0,
     .max = 1000, .doc = "How fast."},
    {.name = "quiet", .short_name = 'q', .type = FL_CONFIG_BOOL, .def = "false",
     .offset = T(quiet), .flags = FL_CONFIG_SWITCH, .doc = "Less output."},
    {.name = "pacing", .type = FL_CONFIG_BOOL, .def = "true", .offset = T(pacing),
     .flags = FL_CONFIG_SWITCH, .doc = "Do not pace."},
    {.name = "verbose", .short_name = 'v', .type = FL_CONFIG_BOOL, .def = "false",
     .offset = T(verbose), .doc = "More output."},
};

static const fl_config_table_t tool_table = {
    .program = "flushline tool",
    .usage = "create|describe [FILE]",
    .summary = "A test tool whose summary is long enough to be wrapped at the help's width of "
               "seventy-nine columns, word by word.",
    .entries = tool_entries,
    .count = FL_CONFIG_COUNT(tool_entries),
    .kafka = true,
    .cli = true,
};

static int tool_load(tool_conf_t *conf, fl_config_t **cfgp, char *errstr, size_t size,
                     char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    memset(conf, 0, sizeof *conf);
    *cfgp = fl_config_new(&tool_table, conf, errstr, size);
    if (!*cfgp)
        return -100;
    return fl_config_load(*cfgp, argc, argv, errstr, size);
}

static int tool_err(char *errstr, size_t size, char **argv)
{
    tool_conf_t conf;
    fl_config_t *cfg;
    int r = tool_load(&conf, &cfg, errstr, size, argv);
    fl_config_free(cfg);
    return r;
}

static void test_cli_forms(void)
{
    tool_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "", *text;
    int nargs;
    char *argv[] = {"tool",  "--doc",  "a/b",     "DESCRIBE", "--read", "x/",   "-q",
                    "--read=y/", "--no-pacing", "--version", "0",  "--wait", "1.5",
                    "--rate", "2.5", "-v", "no", "--", "-file-", NULL};

    clear_env();
    ASSERT_EQ(tool_load(&conf, &cfg, err, sizeof err, argv), 0);
    ASSERT_EQ(conf.action, 1);         /* positional enum, any case */
    ASSERT_STR_EQ(conf.file, "-file-"); /* after "--" */
    ASSERT_STR_EQ(conf.doc, "a/b");
    ASSERT_EQ(conf.reads.count, 2);
    ASSERT_STR_EQ(conf.reads.items[0], "x/");
    ASSERT_STR_EQ(conf.reads.items[1], "y/");
    ASSERT_EQ(conf.version, 0);
    ASSERT_TRUE(fl_config_is_set(cfg, "version"));
    ASSERT_TRUE(!fl_config_is_set(cfg, "time"));
    ASSERT_TRUE(!fl_config_is_set(cfg, "bootstrap"));
    ASSERT_TRUE(!fl_config_is_set(cfg, "no.such.entry"));
    ASSERT_EQ(conf.wait_ms, 1500); /* a plain number is seconds */
    ASSERT_TRUE(conf.rate == 2.5);
    ASSERT_EQ(conf.quiet, true);
    ASSERT_EQ(conf.pacing, false);
    ASSERT_EQ(conf.verbose, false); /* a bool that is not a switch takes a bool word */
    ASSERT_TRUE(fl_config_args(cfg, &nargs) != NULL && nargs == 0);
    text = dump(cfg);
    ASSERT_TRUE(strstr(text, "read = x/, y/  # flag --read\n") != NULL);
    ASSERT_TRUE(strstr(text, "action = describe  # argument <action>\n") != NULL);
    ASSERT_TRUE(strstr(text, "wait = 1500ms  # flag --wait\n") != NULL);
    ASSERT_TRUE(strstr(text, "rate = 2.5  # flag --rate\n") != NULL);
    free(text);
    fl_config_free(cfg);
    /* free empties the list it owned */
    ASSERT_TRUE(conf.reads.items == NULL && conf.reads.count == 0 && conf.doc == NULL);

    {
        char *argv2[] = {"tool", "create", "--doc", "d", "--time", "t", "--wait", "2m", NULL};
        ASSERT_EQ(tool_load(&conf, &cfg, err, sizeof err, argv2), 0);
        ASSERT_EQ(conf.action, 0);
        ASSERT_TRUE(conf.file == NULL);
        ASSERT_EQ(conf.reads.count, 0);
        ASSERT_EQ(conf.wait_ms, 120000);
        ASSERT_TRUE(conf.rate == 0);
        ASSERT_EQ(conf.pacing, true);
        ASSERT_STR_EQ(conf.bootstrap, "127.0.0.1:9092");
        fl_config_free(cfg);
    }
}

static void test_cli_environment(void)
{
    tool_conf_t conf;
    fl_config_t *cfg;
    char err[512] = "";
    char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", NULL};

    clear_env();
    /* only FL_CONFIG_ENV entries read the environment; no config file */
    setenv("FLUSHLINE_BOOTSTRAP", "k:1", 1);
    setenv("FLUSHLINE_DOC", "ignored", 1);
    setenv("FLUSHLINE_RATE", "nonsense", 1);
    setenv("FLUSHLINE_CONFIG", "/nonexistent/fl.conf", 1);
    ASSERT_EQ(tool_load(&conf, &cfg, err, sizeof err, argv), 0);
    ASSERT_STR_EQ(conf.bootstrap, "k:1");
    ASSERT_STR_EQ(conf.doc, "d");
    ASSERT_TRUE(conf.rate == 0);
    ASSERT_TRUE(fl_config_file(cfg) == NULL);
    ASSERT_TRUE(fl_config_is_set(cfg, "bootstrap"));
    fl_config_free(cfg);
    /* an empty variable is unset */
    setenv("FLUSHLINE_BOOTSTRAP", "", 1);
    ASSERT_EQ(tool_load(&conf, &cfg, err, sizeof err, argv), 0);
    ASSERT_STR_EQ(conf.bootstrap, "127.0.0.1:9092");
    ASSERT_TRUE(!fl_config_is_set(cfg, "bootstrap"));
    fl_config_free(cfg);
    unsetenv("FLUSHLINE_BOOTSTRAP");
    unsetenv("FLUSHLINE_DOC");
    unsetenv("FLUSHLINE_RATE");
    unsetenv("FLUSHLINE_CONFIG");
    {
        char *argv2[] = {"tool", "create", "--doc", "d", "--time", "t", "--config", "f", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv2), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown option --config; see --help");
    }
    /* a settings table (not cli) still reads every entry from the environment */
    setenv("FLUSHLINE_PARTITIONS", "", 1);
    {
        char *argv3[] = {"prog", "--bootstrap", "b", NULL};
        ASSERT_EQ(load_err(err, sizeof err, argv3), FL_CONFIG_EVALUE);
    }
    unsetenv("FLUSHLINE_PARTITIONS");
}

static void test_cli_errors(void)
{
    char err[512];
    clear_env();
    {
        char *argv[] = {"tool", "--doc", "d", "--time", "t", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EMISSING);
        ASSERT_STR_EQ(err, "missing argument <action>");
    }
    {
        char *argv[] = {"tool", "create", "--time", "t", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EMISSING);
        ASSERT_STR_EQ(err, "missing required option --doc");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EMISSING);
        ASSERT_STR_EQ(err, "give one of --version or --time");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--version", "3", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_ECONFLICT);
        ASSERT_STR_EQ(err, "--version and --time exclude each other");
        ASSERT_STR_EQ(fl_config_strerror(FL_CONFIG_ECONFLICT), "settings exclude each other");
    }
    {
        char *argv[] = {"tool", "make", "--doc", "d", "--time", "t", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"make\" for <action>: expected one of: create, "
                           "describe");
    }
    {
        char *argv[] = {"tool", "create", "f", "extra", "--doc", "d", "--time", "t", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unexpected argument \"extra\"; see --help");
    }
    {
        /* a switch never takes the next word as its value */
        char *argv[] = {"tool", "create", "f", "--quiet", "true", "--doc", "d", "--time", "t",
                        NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unexpected argument \"true\"; see --help");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--read", "a",
                        "--read", "b", "--read", "c", "--read", "d", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"d\" for --read: at most 3 values");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--read", "a b", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"a b\" for --read: must not contain blanks");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--wait", "1.0005", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"1.0005\" for --wait: expected a duration such as 30, "
                           "1.5s, 2m or 1h (a plain number is seconds) in 1ms..1h");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--rate", "inf", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"inf\" for --rate: expected a number in 0..1000");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--rate", "1000.5", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--version", "-1", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_STR_EQ(err, "invalid value \"-1\" for --version: expected a decimal integer in "
                           ">= 0");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--wiat", "5", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown option --wiat; did you mean --wait?");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--action", "x", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown option --action; see --help"); /* positional, not a flag */
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "-z", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown option -z; see --help");
    }
    {
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "--linger.ms", "5", NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EUNKNOWN);
        ASSERT_STR_EQ(err, "unknown option --linger.ms; did you mean -X linger.ms=... (a "
                           "librdkafka setting)?");
    }
    {
        /* -X errors show the setting as typed, unless it is a secret */
        char *argv[] = {"tool", "create", "--doc", "d", "--time", "t", "-X", "linger.ms=soon",
                        NULL};
        ASSERT_EQ(tool_err(err, sizeof err, argv), FL_CONFIG_EVALUE);
        ASSERT_TRUE(strstr(err, "(from flag -X linger.ms=soon)") != NULL);
    }
}

static void test_table_rules(void)
{
    /* a table that breaks the rules of the entry features is refused */
    static const fl_config_entry_t list_def[] = {
        {.name = "l", .type = FL_CONFIG_STRING, .def = "x", .flags = FL_CONFIG_LIST}};
    static const fl_config_entry_t list_int[] = {
        {.name = "l", .type = FL_CONFIG_INT, .flags = FL_CONFIG_LIST}};
    static const fl_config_entry_t switch_str[] = {
        {.name = "s", .type = FL_CONFIG_STRING, .flags = FL_CONFIG_SWITCH}};
    static const fl_config_entry_t pos_bool[] = {
        {.name = "p", .type = FL_CONFIG_BOOL, .flags = FL_CONFIG_POSITIONAL}};
    static const char *const ab[] = {"a", "b", NULL};
    static const fl_config_entry_t enum_nodef[] = {
        {.name = "e", .type = FL_CONFIG_ENUM, .choices = ab}};
    static const struct {
        const fl_config_entry_t *e;
        const char *err;
    } cases[] = {
        {list_def, "config table: list l must be a string without default or secret"},
        {list_int, "config table: list l must be a string without default or secret"},
        {switch_str, "config table: switch s must be a bool"},
        {pos_bool, "config table: positional p cannot be a bool, a list or a secret"},
        {enum_nodef, "config table: enum e needs a default"},
    };
    union {
        max_align_t a;
        char b[64];
    } target;
    char err[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fl_config_table_t t = {.entries = cases[i].e, .count = 1};
        ASSERT_TRUE(fl_config_new(&t, &target, err, sizeof err) == NULL);
        ASSERT_STR_EQ(err, cases[i].err);
    }
    {
        /* an enum without a default is fine when it must be given; unset it is -1 */
        static const fl_config_entry_t req[] = {{.name = "e", .type = FL_CONFIG_ENUM,
                                                 .choices = ab, .flags = FL_CONFIG_REQUIRED}};
        fl_config_table_t t = {.entries = req, .count = 1};
        int v = 7;
        fl_config_t *cfg = fl_config_new(&t, &v, err, sizeof err);
        ASSERT_TRUE(cfg != NULL);
        ASSERT_EQ(v, -1);
        fl_config_free(cfg);
    }
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_cli_help_and_docs(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&buf, &len);
    fl_config_print_help(&tool_table, fp);
    fclose(fp);
    ASSERT_TRUE(starts_with(buf, "usage: flushline tool create|describe [FILE] [options]\n\n"
                                 "A test tool whose summary is long enough to be wrapped at the "
                                 "help's width of\nseventy-nine columns, word by word.\n"));
    ASSERT_TRUE(strstr(buf, "\nArguments:\n  <action>\n      What to do.\n"
                            "      [one of create, describe; required]\n"
                            "  <file>\n      An optional file.\n\nOptions:\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --bootstrap <string>\n      Kafka.\n"
                            "      [default 127.0.0.1:9092; env FLUSHLINE_BOOTSTRAP]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --doc ID\n      The document.\n      [required]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --read PREFIX\n      A prefix | more.\n"
                            "      [repeatable, up to 3 times]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --version <int>\n      A version.\n"
                            "      [range >= 0; required unless --time]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --wait <duration>\n      How long.\n"
                            "      [default 10; range 1ms..1h]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  --rate <number>\n      How fast.\n"
                            "      [default 0; range 0..1000]\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  -q, --quiet\n      Less output.\n  --no-pacing\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  -v, --verbose[=<bool>], --no-verbose\n") != NULL);
    ASSERT_TRUE(strstr(buf, "  -X <name>=<value>\n") != NULL);
    ASSERT_TRUE(strstr(buf, "--config") == NULL); /* no config file */
    ASSERT_TRUE(strstr(buf, "plain numbers are seconds") != NULL);
    ASSERT_TRUE(strstr(buf, "plain numbers are ms") == NULL);
    for (const char *line = buf; *line; line = strchr(line, '\n') + 1)
        ASSERT_LE(strcspn(line, "\n"), 79);
    free(buf);

    buf = NULL;
    fp = open_memstream(&buf, &len);
    fl_config_print_markdown(&tool_table, fp);
    fclose(fp);
    ASSERT_TRUE(starts_with(buf, "| Option | Type | Default | Environment | Description |\n"
                                 "|---|---|---|---|---|\n"
                                 "| `<action>` | one of create, describe | required | | What to "
                                 "do. |\n"));
    ASSERT_TRUE(strstr(buf, "| `--bootstrap` | string | `127.0.0.1:9092` | `FLUSHLINE_BOOTSTRAP` "
                            "| Kafka. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "| `--read PREFIX` | string, repeatable (up to 3) |  | | A prefix \\| "
                            "more. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "| `--version` | int, >= 0 | required unless `--time` | | A "
                            "version. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "| `--wait` | duration (s), 1ms..1h | `10` | | How long. |\n") !=
                NULL);
    ASSERT_TRUE(strstr(buf, "| `-q`, `--quiet` | flag |  | | Less output. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "| `--no-pacing` | flag |  | | Do not pace. |\n") != NULL);
    ASSERT_TRUE(strstr(buf, "| `-X <name>=<value>` |") != NULL);
    free(buf);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_precedence);
    RUN(test_flags_forms);
    RUN(test_errors);
    RUN(test_bad_default);
    RUN(test_kafka_passthrough);
    RUN(test_help_and_docs);
    RUN(test_duration_parsing);
    RUN(test_size_parsing);
    RUN(test_bool_parsing);
    RUN(test_cli_forms);
    RUN(test_cli_environment);
    RUN(test_cli_errors);
    RUN(test_table_rules);
    RUN(test_cli_help_and_docs);
    return fl_test_done();
}
