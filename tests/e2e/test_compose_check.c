/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compose deployment against the build (no Docker engine needed, no
 * broker): compose/docker-compose.yml must parse (with docker-compose 1.29's
 * `config` when it is installed, always with python3-yaml after the .env
 * interpolation), and every binary, setting, environment name, config file,
 * port and volume it names must exist in the build and agree with the
 * binaries' defaults:
 * - the services (three brokers kafka-1..3 on apache/kafka 3.9, KRaft, one
 *   cluster id, a controller quorum of the three, replication 3 with two
 *   in sync for topics, offsets and transactions, each with a healthcheck
 *   and a data volume of its own; a one-shot init; two processors; two
 *   gateways), their depends_on health conditions, restart policies and
 *   /healthz checks;
 * - the image is built once (only init has `build:`), the daemons run it;
 *   init creates the topics with the replication factor of the brokers;
 * - the gateways mount only the public keys (read-only): not the volume
 *   that holds the secret signing key;
 * - the processors use static group membership (group.instance.id, one
 *   per instance, here and in scripts/cluster);
 * - each daemon's command is a binary of FL_BINARY_DIR/bin that the
 *   Dockerfile copies; each FLUSHLINE_* name is in the binary's
 *   --help-markdown table; its config file (FLUSHLINE_CONFIG) is a
 *   compose/ .conf file the Dockerfile installs at that path; the service's whole
 *   configuration (file + environment) loads with the daemon's own config
 *   table, and the port it listens on is the container port published, the
 *   port its healthcheck probes, and the binary's default;
 * - the .conf files set nothing that differs from the defaults except what a
 *   container needs (listen on every address, the key file);
 * - one prefix and partition count everywhere (init included), distinct
 *   transactional.ids and gateway.ids in one group, distinct host ports;
 * - the Dockerfile: Debian 12 stages, runtime libraries only, a non-root user,
 *   every folder the top CMakeLists.txt adds copied into the build stage;
 * - docs/operations.md carries the binaries' current --help-markdown tables
 *   (FL_UPDATE_DOCS=1 rewrites them).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/config.h"
#include "flushline/log.h"
#include "gw.h"
#include "pr_processor.h"

extern char **environ;

/* Flattens the compose file into tab-separated lines. argv: compose file,
 * .env file, and "-" or the output of `docker-compose config` to read
 * instead (the tool's own interpolation and merge). */
static const char flatten_py[] =
    "import os, re, sys, yaml\n"
    "path, envpath, pre = sys.argv[1], sys.argv[2], sys.argv[3]\n"
    "env = {}\n"
    "for line in open(envpath):\n"
    "    line = line.strip()\n"
    "    if line and not line.startswith('#'):\n"
    "        k, _, v = line.partition('=')\n"
    "        env[k.strip()] = v.strip()\n"
    "missing = []\n"
    "def sub(m):\n"
    "    if m.group(0) == '$$': return '$'\n"
    "    name, dflt = m.group(1), m.group(3)\n"
    "    if name in env: return env[name]\n"
    "    if dflt is not None: return dflt\n"
    "    missing.append(name); return ''\n"
    "if pre != '-':\n"
    "    doc = yaml.safe_load(open(pre))\n"
    "else:\n"
    "    text = re.sub(r'\\$\\$|\\$\\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\\}', sub, open(path).read())\n"
    "    doc = yaml.safe_load(text)\n"
    "for n in missing: print('undefined\\t' + n)\n"
    "def out(*a): print('\\t'.join(str(x).replace('\\t', ' ').replace('\\n', ' ') for x in a))\n"
    "for name, s in (doc.get('services') or {}).items():\n"
    "    out('svc', name)\n"
    "    if 'image' in s: out('image', name, s['image'])\n"
    "    b = s.get('build')\n"
    "    if isinstance(b, dict): out('build', name, b.get('context', ''), b.get('dockerfile', 'Dockerfile'))\n"
    "    c = s.get('command')\n"
    "    if isinstance(c, str): c = c.split()\n"
    "    if c: out('cmd', name, *c)\n"
    "    e = s.get('environment') or {}\n"
    "    if isinstance(e, list): e = dict(x.split('=', 1) for x in e)\n"
    "    for k, v in e.items(): out('env', name, k, '' if v is None else v)\n"
    "    for p in s.get('ports') or []:\n"
    "        if isinstance(p, dict): out('port', name, p.get('published'), p.get('target'))\n"
    "        else:\n"
    "            parts = str(p).split(':'); out('port', name, parts[-2], parts[-1])\n"
    "    h = s.get('healthcheck')\n"
    "    if h:\n"
    "        t = h.get('test'); out('health', name, ' '.join(t) if isinstance(t, list) else t)\n"
    "    d = s.get('depends_on') or {}\n"
    "    if isinstance(d, list): d = {x: {'condition': 'service_started'} for x in d}\n"
    "    for k, v in d.items(): out('dep', name, k, (v or {}).get('condition', 'service_started'))\n"
    "    if 'restart' in s: out('restart', name, s['restart'])\n"
    "    for v in s.get('volumes') or []:\n"
    "        if isinstance(v, dict): out('vol', name, v.get('source'), v.get('target'), 'ro' if v.get('read_only') else 'rw')\n"
    "        else:\n"
    "            parts = v.split(':'); out('vol', name, parts[0], parts[1] if len(parts) > 1 else '', parts[2] if len(parts) > 2 else 'rw')\n"
    "for v in (doc.get('volumes') or {}): out('topvol', v)\n";

/* ---- the flattened compose file ----------------------------------------------- */

#define MAXL 512
static char *lines[MAXL][12];
static int nlines;

static int flatten(const char *compose, const char *envfile, const char *pre)
{
    char script[600], cmd[2400], buf[4096];
    FILE *fp;
    snprintf(script, sizeof script, "%s/tests/compose_flatten.py", getenv("FL_BINARY_DIR"));
    if (!(fp = fopen(script, "w")))
        return -1;
    fputs(flatten_py, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s' '%s'", script, compose, envfile, pre);
    if (!(fp = popen(cmd, "r")))
        return -1;
    nlines = 0;
    while (fgets(buf, sizeof buf, fp) && nlines < MAXL) {
        buf[strcspn(buf, "\n")] = '\0';
        int nf = 0;
        for (char *save = NULL, *tok = strtok_r(buf, "\t", &save); tok && nf < 11;
             tok = strtok_r(NULL, "\t", &save))
            lines[nlines][nf++] = strdup(tok);
        lines[nlines][nf] = NULL;
        nlines++;
    }
    return pclose(fp) == 0 ? 0 : -1;
}

static void flatten_free(void)
{
    for (int i = 0; i < nlines; i++)
        for (int f = 0; lines[i][f]; f++) {
            free(lines[i][f]);
            lines[i][f] = NULL;
        }
    nlines = 0;
}

/* Field f of the first line of kind for service svc (NULL: none). */
static const char *get(const char *kind, const char *svc, int f)
{
    for (int i = 0; i < nlines; i++)
        if (strcmp(lines[i][0], kind) == 0 && (!svc || (lines[i][1] && !strcmp(lines[i][1], svc))))
            return lines[i][f];
    return NULL;
}

static const char *env_of(const char *svc, const char *name)
{
    for (int i = 0; i < nlines; i++)
        if (!strcmp(lines[i][0], "env") && !strcmp(lines[i][1], svc) && !strcmp(lines[i][2], name))
            return lines[i][3] ? lines[i][3] : "";
    return NULL;
}

static const char *dep_of(const char *svc, const char *on)
{
    for (int i = 0; i < nlines; i++)
        if (!strcmp(lines[i][0], "dep") && !strcmp(lines[i][1], svc) && !strcmp(lines[i][2], on))
            return lines[i][3];
    return NULL;
}

static int count(const char *kind, const char *svc)
{
    int n = 0;
    for (int i = 0; i < nlines; i++)
        if (!strcmp(lines[i][0], kind) && (!svc || !strcmp(lines[i][1], svc)))
            n++;
    return n;
}

/* ---- the binaries' config tables --------------------------------------------- */

typedef struct setting_s {
    char name[64], def[128], env[96];
} setting_t;

typedef struct table_s {
    setting_t s[64];
    int n;
    char *markdown;
} table_t;

static char *run_capture(const char *cmd, int *status)
{
    FILE *fp = popen(cmd, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    if (!fp)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 16384;
            buf = realloc(buf, cap);
        }
        r = fread(buf + len, 1, cap - len - 1, fp);
        len += r;
    } while (r > 0);
    buf[len] = '\0';
    *status = pclose(fp);
    return buf;
}

/* `| `name` | type | `default` or (none) | `ENV` | doc |` */
static void cell(const char *from, const char *to, char *out, size_t size)
{
    while (from < to && (*from == ' ' || *from == '`'))
        from++;
    while (to > from && (to[-1] == ' ' || to[-1] == '`'))
        to--;
    snprintf(out, size, "%.*s", (int)(to - from), from);
}

static int load_table(const char *binary, table_t *t)
{
    char cmd[1200];
    int st;
    memset(t, 0, sizeof *t);
    snprintf(cmd, sizeof cmd, "'%s/bin/%s' --help-markdown", getenv("FL_BINARY_DIR"), binary);
    if (!(t->markdown = run_capture(cmd, &st)) || st != 0)
        return -1;
    for (char *line = t->markdown; *line && t->n < 64;) {
        char *eol = strchr(line, '\n');
        if (!eol)
            eol = line + strlen(line);
        if (strncmp(line, "| `", 3) == 0) {
            const char *bar[6];
            int nb = 0;
            for (const char *p = line; p < eol && nb < 6; p++)
                if (*p == '|')
                    bar[nb++] = p;
            if (nb == 6) {
                setting_t *s = &t->s[t->n++];
                cell(bar[0] + 1, bar[1], s->name, sizeof s->name);
                cell(bar[2] + 1, bar[3], s->def, sizeof s->def);
                cell(bar[3] + 1, bar[4], s->env, sizeof s->env);
            }
        }
        line = *eol ? eol + 1 : eol;
    }
    return t->n > 5 ? 0 : -1;
}

static const setting_t *by_env(const table_t *t, const char *env)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->s[i].env, env))
            return &t->s[i];
    return NULL;
}

static const setting_t *by_name(const table_t *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->s[i].name, name))
            return &t->s[i];
    return NULL;
}

static table_t proc_table, gw_table;
static char compose_path[700], env_path[700], dockerfile[700], *dockertext;

/* ---- checks ------------------------------------------------------------------- */

static const char *const daemons[] = {"processor-1", "processor-2", "gateway-1", "gateway-2"};

static bool is_processor(const char *svc)
{
    return strncmp(svc, "processor", 9) == 0;
}

static void test_parses(void)
{
    char cmd[1600], pre[700];
    int st;
    bool tool = system("command -v docker-compose >/dev/null 2>&1") == 0;
    strcpy(pre, "-");
    if (tool) {
        /* the compose tool's own reading (offline: `config` needs no engine) */
        snprintf(pre, sizeof pre, "%s/tests/compose_config.yml", getenv("FL_BINARY_DIR"));
        snprintf(cmd, sizeof cmd, "docker-compose -f '%s' --env-file '%s' config > '%s' 2>&1",
                 compose_path, env_path, pre);
        st = system(cmd);
        if (st != 0) {
            snprintf(cmd, sizeof cmd, "cat '%s' >&2", pre);
            if (system(cmd) != 0)
                fprintf(stderr, "(no output)\n");
            FL_FAIL_("docker-compose config failed (status %d)", st);
        }
        printf("  docker-compose config: ok\n");
    } else {
        printf("  docker-compose not installed: python3-yaml only\n");
    }
    /* both readings when the tool is there: the raw file with our own
     * interpolation, then the tool's output, which the other checks use */
    ASSERT_EQ(flatten(compose_path, env_path, "-"), 0);
    ASSERT_EQ(count("undefined", NULL), 0);
    int raw_services = count("svc", NULL), raw_envs = count("env", NULL);
    flatten_free();
    ASSERT_EQ(flatten(compose_path, env_path, pre), 0);
    ASSERT_EQ(count("svc", NULL), raw_services);
    ASSERT_EQ(count("env", NULL), raw_envs);
    printf("  %d services, %d environment entries\n", raw_services, raw_envs);
}

static const char *const brokers[] = {"kafka-1", "kafka-2", "kafka-3"};

/* The volume source mounted at target in svc, or NULL. */
static const char *vol_at(const char *svc, const char *target)
{
    for (int i = 0; i < nlines; i++)
        if (!strcmp(lines[i][0], "vol") && !strcmp(lines[i][1], svc) && lines[i][3] &&
            !strcmp(lines[i][3], target))
            return lines[i][2];
    return NULL;
}

static void test_services(void)
{
    static const char *const all[] = {"kafka-1",     "kafka-2",     "kafka-3",   "init",
                                      "processor-1", "processor-2", "gateway-1", "gateway-2"};
    ASSERT_EQ(count("svc", NULL), 8);
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (count("svc", all[i]) != 1)
            FL_FAIL_("service %s missing", all[i]);
    /* Kafka: three nodes of the official 3.9 image, one KRaft cluster */
    char voters[256] = "", bootstrap[256] = "";
    for (int b = 0; b < 3; b++) {
        char part[64];
        snprintf(part, sizeof part, "%s%d@%s:9093", b ? "," : "", b + 1, brokers[b]);
        strcat(voters, part);
        snprintf(part, sizeof part, "%s%s:9092", b ? "," : "", brokers[b]);
        strcat(bootstrap, part);
    }
    for (int b = 0; b < 3; b++) {
        const char *k = brokers[b], *img = get("image", k, 2);
        char id[8], adv[64];
        snprintf(id, sizeof id, "%d", b + 1);
        snprintf(adv, sizeof adv, "PLAINTEXT://%s:9092", k);
        ASSERT_TRUE(img && strncmp(img, "apache/kafka:3.9", 16) == 0);
        ASSERT_STR_EQ(img, get("image", "kafka-1", 2));
        ASSERT_STR_EQ(env_of(k, "KAFKA_NODE_ID"), id);
        ASSERT_STR_EQ(env_of(k, "CLUSTER_ID"), env_of("kafka-1", "CLUSTER_ID"));
        ASSERT_STR_EQ(env_of(k, "KAFKA_PROCESS_ROLES"), "broker,controller");
        ASSERT_STR_EQ(env_of(k, "KAFKA_CONTROLLER_QUORUM_VOTERS"), voters);
        ASSERT_TRUE(strstr(env_of(k, "KAFKA_ADVERTISED_LISTENERS"), adv) != NULL);
        /* replicated: three copies, two in sync to acknowledge */
        ASSERT_STR_EQ(env_of(k, "KAFKA_DEFAULT_REPLICATION_FACTOR"), "3");
        ASSERT_STR_EQ(env_of(k, "KAFKA_MIN_INSYNC_REPLICAS"), "2");
        ASSERT_STR_EQ(env_of(k, "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"), "3");
        ASSERT_STR_EQ(env_of(k, "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"), "3");
        ASSERT_STR_EQ(env_of(k, "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"), "2");
        ASSERT_STR_EQ(env_of(k, "KAFKA_AUTO_CREATE_TOPICS_ENABLE"), "false");
        /* the tuned JVM (docs/operations.md, "Broker tuning") */
        ASSERT_TRUE(env_of(k, "KAFKA_HEAP_OPTS") && strstr(env_of(k, "KAFKA_HEAP_OPTS"), "-Xmx"));
        ASSERT_TRUE(env_of(k, "KAFKA_JVM_PERFORMANCE_OPTS") &&
                    strstr(env_of(k, "KAFKA_JVM_PERFORMANCE_OPTS"), "MaxGCPauseMillis"));
        ASSERT_TRUE(get("health", k, 2) != NULL);
        ASSERT_STR_EQ(get("restart", k, 2), "unless-stopped");
        /* a data volume of its own */
        const char *data = vol_at(k, env_of(k, "KAFKA_LOG_DIRS"));
        ASSERT_TRUE(data != NULL);
        for (int o = 0; o < b; o++)
            ASSERT_TRUE(strcmp(data, vol_at(brokers[o], env_of(brokers[o], "KAFKA_LOG_DIRS"))));
    }
    ASSERT_EQ(count("topvol", NULL), 5);
    /* init: one-shot after three healthy brokers; the only build */
    for (int b = 0; b < 3; b++)
        ASSERT_STR_EQ(dep_of("init", brokers[b]), "service_healthy");
    ASSERT_STR_EQ(get("restart", "init", 2), "no");
    ASSERT_EQ(count("build", NULL), 1);
    ASSERT_TRUE(get("build", "init", 3) && strstr(get("build", "init", 3), "compose/Dockerfile"));
    ASSERT_STR_EQ(env_of("init", "REPLICATION_FACTOR"), "3");
    /* the daemons: after healthy brokers and a finished init, restarted,
     * health-checked on /healthz, connected to all three brokers */
    for (int i = 0; i < 4; i++) {
        const char *svc = daemons[i], *r = get("restart", svc, 2), *h = get("health", svc, 2);
        for (int b = 0; b < 3; b++)
            ASSERT_STR_EQ(dep_of(svc, brokers[b]), "service_healthy");
        ASSERT_STR_EQ(dep_of(svc, "init"), "service_completed_successfully");
        ASSERT_TRUE(r && (!strcmp(r, "unless-stopped") || !strcmp(r, "always") ||
                          !strcmp(r, "on-failure")));
        ASSERT_TRUE(h && strstr(h, "/healthz") && strstr(h, " 200 "));
        ASSERT_STR_EQ(env_of(svc, "FLUSHLINE_BOOTSTRAP"), bootstrap);
    }
    ASSERT_STR_EQ(env_of("init", "FLUSHLINE_BOOTSTRAP"), bootstrap);
    for (int i = 2; i < 4; i++) {
        ASSERT_STR_EQ(dep_of(daemons[i], "processor-1"), "service_healthy");
        ASSERT_STR_EQ(dep_of(daemons[i], "processor-2"), "service_healthy");
    }
}

/* Applies the service's environment (paths inside the image mapped to the
 * repository's compose/ files) and loads its configuration with the
 * daemon's own table. */
static int load_service(const char *svc, void *target, fl_config_t **out, char *errstr,
                        size_t size)
{
    const fl_config_table_t *table = is_processor(svc) ? &pr_config_table : &gw_config_table;
    char *argv[] = {(char *)svc, NULL};
    /* nothing from the test's own environment (FLUSHLINE_BOOTSTRAP ...) */
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e; e++)
            if (strncmp(*e, "FLUSHLINE_", 10) == 0) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(strcspn(*e, "=")), *e);
                unsetenv(name);
                again = true;
                break;
            }
    }
    for (int i = 0; i < nlines; i++) {
        if (strcmp(lines[i][0], "env") || strcmp(lines[i][1], svc))
            continue;
        const char *k = lines[i][2], *v = lines[i][3] ? lines[i][3] : "";
        char local[800];
        if (!strcmp(k, "FLUSHLINE_CONFIG") && !strncmp(v, "/etc/flushline/", 15)) {
            snprintf(local, sizeof local, "%s", fl_test_source_path("compose/"));
            strncat(local, v + 15, sizeof local - strlen(local) - 1);
            v = local;
        }
        setenv(k, v, 1);
    }
    fl_config_t *conf = fl_config_new(table, target, errstr, size);
    if (!conf)
        return -1;
    int rc = fl_config_load(conf, 1, argv, errstr, size);
    *out = conf;
    return rc;
}

static int port_in_health(const char *health)
{
    const char *p = strstr(health, "/dev/tcp/127.0.0.1/");
    return p ? atoi(p + 19) : -1;
}

static void test_daemons_against_build(void)
{
    char errstr[512], path[900];
    const char *prefix = env_of("init", "FLUSHLINE_PREFIX"),
               *parts = env_of("init", "FLUSHLINE_PARTITIONS");
    const char *init_cmd = NULL;
    ASSERT_TRUE(prefix && parts);
    /* init runs the CLI from the same image with the same partition count,
     * and writes the development key */
    for (int f = 2; f < 11 && get("cmd", "init", f); f++)
        if (strstr(get("cmd", "init", f), "flushline topics create"))
            init_cmd = get("cmd", "init", f);
    ASSERT_TRUE(init_cmd && strstr(init_cmd, "--partitions") && strstr(init_cmd, "keys/dev.key"));
    /* (`docker-compose config` writes the $ escaped as $$) */
    ASSERT_TRUE(strstr(init_cmd, "--replication-factor \"$") &&
                strstr(init_cmd, "$REPLICATION_FACTOR\""));
    /* the secret key's volume and the public keys' volume are not one */
    const char *secret_vol = vol_at("init", "/var/lib/flushline/keys"),
               *public_vol = vol_at("init", "/var/lib/flushline/public-keys");
    ASSERT_TRUE(secret_vol && public_vol && strcmp(secret_vol, public_vol) != 0);
    ASSERT_TRUE(strstr(init_cmd, "cp keys/dev.key.pub public-keys/dev.key.pub") != NULL);
    ASSERT_STR_EQ(get("image", "init", 2), get("image", "processor-1", 2));
    char group[4][128] = {{0}}, txid[2][128] = {{0}}, gwid[2][128] = {{0}};
    for (int i = 0; i < 4; i++) {
        const char *svc = daemons[i];
        const table_t *t = is_processor(svc) ? &proc_table : &gw_table;
        const char *bin = get("cmd", svc, 2);
        struct stat sb;
        /* the same image, built from compose/Dockerfile */
        ASSERT_STR_EQ(get("image", svc, 2), get("image", "init", 2));
        ASSERT_TRUE(get("build", svc, 3) == NULL); /* built once, by init */
        /* the command is a binary of the build that the image contains */
        ASSERT_TRUE(bin != NULL);
        ASSERT_STR_EQ(bin, is_processor(svc) ? "flushline-processor" : "flushline-gateway");
        snprintf(path, sizeof path, "%s/bin/%s", getenv("FL_BINARY_DIR"), bin);
        ASSERT_TRUE(stat(path, &sb) == 0 && (sb.st_mode & S_IXUSR));
        snprintf(path, sizeof path, "/build/bin/%s", bin);
        ASSERT_TRUE(strstr(dockertext, path) != NULL);
        /* every FLUSHLINE_* name is one of the binary's settings */
        for (int l = 0; l < nlines; l++) {
            if (strcmp(lines[l][0], "env") || strcmp(lines[l][1], svc))
                continue;
            const char *k = lines[l][2];
            if (!strcmp(k, "FLUSHLINE_CONFIG")) {
                const char *v = lines[l][3];
                ASSERT_TRUE(v && !strncmp(v, "/etc/flushline/", 15));
                snprintf(path, sizeof path, "compose/%s", v + 15);
                ASSERT_TRUE(stat(fl_test_source_path(path), &sb) == 0);
                ASSERT_TRUE(strstr(dockertext, path) != NULL); /* COPY compose/x.conf */
                continue;
            }
            if (!by_env(t, k))
                FL_FAIL_("%s: %s is not a setting of %s", svc, k, bin);
        }
        ASSERT_STR_EQ(env_of(svc, "FLUSHLINE_PREFIX"), prefix);
        ASSERT_STR_EQ(env_of(svc, "FLUSHLINE_PARTITIONS"), parts);
        ASSERT_TRUE(env_of(svc, "FLUSHLINE_CONFIG") != NULL);
        /* the whole configuration loads as the daemon loads it */
        fl_config_t *conf = NULL;
        int port, container = -1, host = -1;
        if (is_processor(svc)) {
            pr_config_t cfg;
            memset(&cfg, 0, sizeof cfg);
            if (load_service(svc, &cfg, &conf, errstr, sizeof errstr) != 0) {
                fl_config_free(conf);
                FL_FAIL_("%s: configuration does not load: %s", svc, errstr);
            }
            port = (int)cfg.http_port;
            ASSERT_STR_EQ(cfg.http_addr, "0.0.0.0"); /* reachable through the port mapping */
            ASSERT_EQ(cfg.partitions, atoi(parts));
            snprintf(group[i], sizeof group[i], "%s", cfg.group_id);
            snprintf(txid[i], sizeof txid[i], "%s", cfg.transactional_id);
            /* static group membership: the instance's own stable name */
            bool is_static = cfg.group_instance_id &&
                             !strcmp(cfg.group_instance_id, cfg.transactional_id);
            if (!is_static) {
                fl_config_free(conf);
                FL_FAIL_("%s: group.instance.id is not set to its transactional.id", svc);
            }
            fl_config_free(conf); /* clears cfg's strings: before cfg goes out of scope */
        } else {
            gw_config_t cfg;
            memset(&cfg, 0, sizeof cfg);
            if (load_service(svc, &cfg, &conf, errstr, sizeof errstr) != 0) {
                fl_config_free(conf);
                FL_FAIL_("%s: configuration does not load: %s", svc, errstr);
            }
            port = (int)cfg.port;
            ASSERT_STR_EQ(cfg.bind, "0.0.0.0");
            ASSERT_EQ(cfg.partitions, atoi(parts));
            snprintf(gwid[i - 2], sizeof gwid[i - 2], "%s", cfg.gateway_id ? cfg.gateway_id : "");
            /* the key file is in the public-keys volume that init fills,
             * mounted read-only; the secret key's volume is not mounted */
            bool key_ok = cfg.jwt_keys &&
                          !strcmp(cfg.jwt_keys, "/var/lib/flushline/public-keys/dev.key.pub");
            fl_config_free(conf);
            ASSERT_TRUE(key_ok);
            ASSERT_STR_EQ(vol_at(svc, "/var/lib/flushline/public-keys"), public_vol);
            for (int l = 0; l < nlines; l++) {
                if (strcmp(lines[l][0], "vol") || strcmp(lines[l][1], svc))
                    continue;
                if (!strcmp(lines[l][2], secret_vol))
                    FL_FAIL_("%s mounts %s, the secret signing key's volume", svc, secret_vol);
                if (!strcmp(lines[l][3], "/var/lib/flushline/public-keys"))
                    ASSERT_STR_EQ(lines[l][4], "ro");
            }
        }
        /* the listening port: published, probed, and the binary's default */
        if (get("port", svc, 3))
            container = atoi(get("port", svc, 3)), host = atoi(get("port", svc, 2));
        const setting_t *ps = by_name(t, is_processor(svc) ? "http.port" : "port");
        ASSERT_TRUE(ps != NULL);
        ASSERT_EQ(port, container);
        ASSERT_EQ(port, port_in_health(get("health", svc, 2)));
        ASSERT_EQ(port, atoi(ps->def));
        ASSERT_GT(host, 0);
        printf("  %-11s %-19s listens on %d (default %s), host port %d\n", svc, bin, port,
               ps->def, host);
    }
    ASSERT_STR_EQ(group[0], group[1]);
    ASSERT_TRUE(strcmp(txid[0], txid[1]) != 0);
    ASSERT_TRUE(strcmp(gwid[0], gwid[1]) != 0 && gwid[0][0] && gwid[1][0]);
    /* host ports distinct */
    for (int i = 0; i < nlines; i++)
        for (int j = i + 1; j < nlines; j++)
            if (!strcmp(lines[i][0], "port") && !strcmp(lines[j][0], "port") &&
                !strcmp(lines[i][2], lines[j][2]))
                FL_FAIL_("host port %s used by %s and %s", lines[i][2], lines[i][1], lines[j][1]);
}

/* The .conf files: only settings of the binary, and only the defaults except
 * what a container needs. */
static void check_conf(const char *rel, const table_t *t, const char *const *allowed)
{
    size_t len;
    char *text = fl_test_read_file(fl_test_source_path(rel), &len);
    int n = 0;
    ASSERT_TRUE(text != NULL);
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char name[128], value[256];
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        if (sscanf(line, "%127[^= \t] = %255[^\n]", name, value) != 2) {
            free(text);
            FL_FAIL_("%s: bad line \"%s\"", rel, line);
        }
        n++;
        const setting_t *s = by_name(t, name);
        if (!s && strncmp(name, "kafka.", 6) != 0) {
            free(text);
            FL_FAIL_("%s: %s is not a setting", rel, name);
        }
        bool ok = s && !strcmp(s->def, value);
        for (int i = 0; allowed[i]; i++)
            ok = ok || !strcmp(allowed[i], name);
        if (!ok) {
            free(text);
            FL_FAIL_("%s: %s = %s differs from the default %s", rel, name, value,
                     s ? s->def : "(kafka)");
        }
    }
    free(text);
    ASSERT_GT(n, 3);
}

static void test_conf_files(void)
{
    static const char *const pr_allowed[] = {"http.addr", NULL};
    static const char *const gw_allowed[] = {"bind", "jwt.keys", NULL};
    check_conf("compose/processor.conf", &proc_table, pr_allowed);
    check_conf("compose/gateway.conf", &gw_table, gw_allowed);
    /* scripts/cluster runs the same settings natively */
    size_t len;
    char *script = fl_test_read_file(fl_test_source_path("scripts/cluster"), &len);
    ASSERT_TRUE(script != NULL);
    bool both = strstr(script, "compose/processor.conf") && strstr(script, "compose/gateway.conf");
    bool is_static = strstr(script, "--group.instance.id \"$part\"") != NULL;
    free(script);
    ASSERT_TRUE(both);
    ASSERT_TRUE(is_static); /* static membership there too */
}

static void test_dockerfile(void)
{
    const char *final = NULL;
    for (const char *p = dockertext; (p = strstr(p, "\nFROM ")); p++)
        final = p + 1;
    ASSERT_TRUE(strstr(dockertext, "\nFROM debian:12 AS build") != NULL);
    ASSERT_TRUE(final && strncmp(final, "FROM debian:12", 14) == 0);
    static const char *const libs[] = {"librdkafka1", "libwebsockets17", "libmsgpackc2",
                                       "libsodium23", "libjansson4"};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
        if (!strstr(final, libs[i]))
            FL_FAIL_("the final stage does not install %s", libs[i]);
    ASSERT_TRUE(strstr(final, "-dev") == NULL);
    ASSERT_TRUE(strstr(final, "clang") == NULL && strstr(final, "cmake") == NULL);
    const char *user = strstr(final, "\nUSER ");
    ASSERT_TRUE(user && strncmp(user, "\nUSER root", 10) != 0 && strncmp(user, "\nUSER 0", 7) != 0);
    ASSERT_TRUE(strstr(dockertext, "--from=build") != NULL);
    /* the build stage copies the sources folder by folder: every folder the
     * top CMakeLists.txt adds must be among them (a new one breaks the image) */
    size_t len;
    char *top = fl_test_read_file(fl_test_source_path("CMakeLists.txt"), &len);
    ASSERT_TRUE(top != NULL);
    int folders = 0;
    for (const char *p = top; top && (p = strstr(p, "\nadd_subdirectory(")); p++) {
        const char *name = p + strlen("\nadd_subdirectory(");
        char copy[160];
        int n = (int)strcspn(name, ") \t");
        snprintf(copy, sizeof copy, "\nCOPY %.*s %.*s\n", n, name, n, name);
        if (!strstr(dockertext, copy))
            FL_FAIL_("compose/Dockerfile does not copy %.*s (add_subdirectory in CMakeLists.txt)",
                     n, name);
        folders++;
    }
    free(top);
    ASSERT_TRUE(folders >= 5);
}

/* docs/operations.md holds each binary's --help-markdown between markers. */
static void test_docs_current(void)
{
    static const char *const bins[] = {"flushline-processor", "flushline-gateway"};
    const table_t *tables[] = {&proc_table, &gw_table};
    size_t len;
    const char *rel = "docs/operations.md";
    char *doc = fl_test_read_file(fl_test_source_path(rel), &len);
    bool update = getenv("FL_UPDATE_DOCS") != NULL, changed = false;
    ASSERT_TRUE(doc != NULL);
    for (int i = 0; i < 2; i++) {
        char begin[128], end[128];
        snprintf(begin, sizeof begin, "<!-- BEGIN %s --help-markdown -->\n", bins[i]);
        snprintf(end, sizeof end, "<!-- END %s --help-markdown -->", bins[i]);
        char *b = strstr(doc, begin), *e = b ? strstr(b, end) : NULL;
        if (!b || !e) {
            free(doc);
            FL_FAIL_("%s: no %s ... %s markers", rel, begin, end);
        }
        b += strlen(begin);
        const char *want = tables[i]->markdown;
        if ((size_t)(e - b) == strlen(want) && memcmp(b, want, strlen(want)) == 0)
            continue;
        if (!update) {
            free(doc);
            FL_FAIL_("%s: the %s settings table differs from `%s --help-markdown` (regenerate: "
                     "FL_UPDATE_DOCS=1 %s/tests/e2e_test_compose_check)",
                     rel, bins[i], bins[i], getenv("FL_BINARY_DIR"));
        }
        size_t off = (size_t)(b - doc), rest = strlen(e);
        char *nd = malloc(off + strlen(want) + rest + 1);
        memcpy(nd, doc, off);
        memcpy(nd + off, want, strlen(want));
        memcpy(nd + off + strlen(want), e, rest + 1);
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

int main(void)
{
    size_t len;
    fl_log_init("test", FL_LOG_WARN);
    snprintf(compose_path, sizeof compose_path, "%s",
             fl_test_source_path("compose/docker-compose.yml"));
    snprintf(env_path, sizeof env_path, "%s", fl_test_source_path("compose/.env"));
    snprintf(dockerfile, sizeof dockerfile, "%s", fl_test_source_path("compose/Dockerfile"));
    if (!(dockertext = fl_test_read_file(dockerfile, &len)) ||
        load_table("flushline-processor", &proc_table) != 0 ||
        load_table("flushline-gateway", &gw_table) != 0) {
        fprintf(stderr, "cannot read the Dockerfile or the binaries' --help-markdown\n");
        return 1;
    }
    RUN(test_parses);
    RUN(test_services);
    RUN(test_daemons_against_build);
    RUN(test_conf_files);
    RUN(test_dockerfile);
    RUN(test_docs_current);
    flatten_free();
    free(dockertext);
    free(proc_table.markdown);
    free(gw_table.markdown);
    return fl_test_done();
}
