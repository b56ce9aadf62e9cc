/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/gateway-memory: user-space memory per open, idle, authenticated
 * WebSocket connection of flushline-gateway (SPEC bar: <= 8 KiB), in two
 * cases run one after the other in one invocation:
 *   idle:  N connections, nothing subscribed;
 *   docs:  N connections, each subscribed to a document of its own (N live
 *          document copies in the gateway, the worst case for its
 *          per-document cost; issue 18 bar: still <= 8 KiB per connection).
 *
 * One case: a throwaway topic set and key; the gateway (Release build, its
 * own process, --log.level warn), and for "docs" a processor that answers
 * the gateway's syncs; the gateway's VmRSS with 0 connections is the
 * baseline. A separate load process (this program, mode "load") opens N
 * connections on 127.0.0.1 (each with a token of its own user: the worst
 * case for the gateway's shared grants), sends hello and waits for every
 * welcome (for "docs": subscribes each to bench/m<i> and waits for every
 * snapshot); the gateway's metrics must show N connections. Once its RSS
 * stops moving it is read again: (RSS_N - RSS_0) / N bytes per connection.
 * Everything started is stopped and the topics are deleted; the run is
 * bounded by an alarm.
 *
 * Usage: gateway-memory [N]     (default 10000; needs FLUSHLINE_BOOTSTRAP,
 *                                FL_GATEWAY_BIN, FL_PROCESSOR_BIN;
 *                                bench/gateway-memory.sh sets them)
 */
#include <poll.h>

#include "fanout.h"
#include "flushline/wire.h"

#define BATCH 256 /* connections being set up at once */

/* ---- the load process ------------------------------------------------------ */

static uint32_t welcomed;
static bool load_docs; /* each connection subscribes to a document of its own */
static b_ws_t *load_base;

/* Subscribes ws to bench/m<its index>. */
static void subscribe_own(b_ws_t *ws)
{
    fl_wire_msg_t msg;
    char doc[32], *out = NULL, errstr[128];
    size_t len;
    snprintf(doc, sizeof doc, "bench/m%ld", (long)(ws - load_base));
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_SUBSCRIBE;
    msg.u.sub.doc = (fl_slice_t){doc, strlen(doc)};
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) == 0)
        b_ws_send(ws, out, len);
    free(out);
}

/* Counts a connection ready at its welcome, or at its snapshot when it
 * subscribes. */
static void on_load_frame(b_ws_t *ws, const unsigned char *p, size_t n)
{
    if (ws->frames == 1) {
        if (!memmem(p, n, "welcome", 7))
            fprintf(stderr, "load: first frame is not a welcome\n");
        else if (load_docs)
            subscribe_own(ws);
        else
            welcomed++;
    } else if (ws->frames == 2 && load_docs) {
        if (memmem(p, n, "snapshot", 8))
            welcomed++;
        else
            fprintf(stderr, "load: the answer to subscribe is not a snapshot\n");
    }
}

static int load_main(int port, long n, const char *keypath)
{
    fl_jwt_keyfile_t *kf = NULL;
    b_ws_t *ws = load_base = calloc((size_t)n, sizeof *ws);
    unsigned char *scratch = malloc(1 << 16);
    struct epoll_event evs[256];
    char errstr[256], sub[32];
    long started = 0, ready = 0;
    double deadline = b_now() + 300;
    int ep = epoll_create1(EPOLL_CLOEXEC);

    b_raise_nofile();
    if (!ws || !scratch || ep < 0 || fl_jwt_keyfile_read(keypath, &kf, errstr, sizeof errstr)) {
        fprintf(stderr, "load: setup failed\n");
        return 1;
    }
    /* the hellos first: minting is not what is measured */
    for (long i = 0; i < n; i++) {
        fl_wire_msg_t msg;
        char *tok, *out = NULL;
        size_t len;
        snprintf(sub, sizeof sub, "user%ld", i);
        if (!(tok = b_token(kf, sub)))
            return 1;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_HELLO;
        msg.u.hello.token = (fl_slice_t){tok, strlen(tok)};
        msg.u.hello.client = FL_SLICE("bench/1");
        if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) != 0)
            return 1;
        free(tok);
        ws[i].greeting = out;
        ws[i].greetlen = len;
        ws[i].fd = -1;
    }
    fl_jwt_keyfile_free(kf);
    while (welcomed < (uint32_t)n && b_now() < deadline) {
        while (started < n && started - (long)welcomed < BATCH) {
            b_ws_t *w = &ws[started];
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = w};
            if ((w->fd = b_tcp_connect(port, true)) < 0 ||
                epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) != 0) {
                fprintf(stderr, "load: connect %ld: %s\n", started, strerror(errno));
                return 1;
            }
            w->state = WS_CONNECTING;
            started++;
        }
        int k = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < k; i++) {
            b_ws_t *w = evs[i].data.ptr;
            if (w->state == WS_CONNECTING && (evs[i].events & EPOLLOUT)) {
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
                epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &ev);
                if (b_ws_upgrade(w) != 0) {
                    fprintf(stderr, "load: upgrade failed\n");
                    return 1;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                if (b_ws_read(w, scratch, 1 << 16, on_load_frame) != 0) {
                    fprintf(stderr, "load: a connection closed (%u welcomed)\n", welcomed);
                    return 1;
                }
        }
        if (welcomed > (uint32_t)ready && welcomed % 1000 == 0)
            fprintf(stderr, "load: %u welcomed\n", (ready = welcomed, welcomed));
    }
    if (welcomed < (uint32_t)n) {
        fprintf(stderr, "load: only %u of %ld welcomed in time\n", welcomed, n);
        return 1;
    }
    printf("ready %u\n", welcomed);
    fflush(stdout);
    /* hold every connection, idle, until the bench closes stdin */
    for (;;) {
        struct pollfd pfd = {0, POLLIN, 0};
        char c;
        if (poll(&pfd, 1, 1000) > 0 && read(0, &c, 1) <= 0)
            break;
    }
    return 0;
}

/* ---- the bench ---------------------------------------------------------------- */

/* Reads one line from fd within timeout_ms. */
static int read_line(int fd, char *buf, size_t size, int timeout_ms)
{
    size_t len = 0;
    double deadline = b_now() + timeout_ms / 1000.0;
    while (len + 1 < size && b_now() < deadline) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, 200) <= 0)
            continue;
        if (read(fd, buf + len, 1) != 1)
            return -1;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return 0;
        }
        len++;
    }
    return -1;
}

static long long settled_rss(pid_t pid)
{
    long long rss = -1, prev = -2;
    /* wait until it stops moving (lws and malloc settle) */
    for (int i = 0; i < 20 && rss != prev; i++) {
        prev = rss;
        b_sleep_ms(500);
        rss = b_rss(pid);
    }
    return rss;
}

typedef struct gwcase_s {
    const char *name; /* "idle" or "docs" */
    const char *gwbin, *prbin;
    long n;
    long long rss0, rssn;
} gwcase_t;

/* Starts the load process (mode "load") with N connections; its stdin and
 * stdout are the pipes kept in *to and *from. */
static pid_t start_load(const gwcase_t *c, const char *portstr, const char *keysec, int *to,
                        int *from)
{
    char nstr[16], logpath[PATH_MAX];
    char *args[] = {b_self, "load", (char *)portstr, nstr, (char *)keysec, (char *)c->name, NULL};
    int pin[2], pout[2], fd;
    pid_t parent = getpid(), load;
    snprintf(nstr, sizeof nstr, "%ld", c->n);
    snprintf(logpath, sizeof logpath, "%s/load-%s.log", b_dir, c->name);
    if (pipe(pin) != 0 || pipe(pout) != 0 ||
        (fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
        (load = fork()) < 0)
        return -1;
    if (load == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(fd, 2);
        execv(args[0], args);
        _exit(127);
    }
    close(fd);
    for (int i = 0; i < B_MAX_CHILDREN; i++)
        if (!b_children[i]) {
            b_children[i] = load;
            break;
        }
    close(pin[0]);
    close(pout[1]);
    *to = pin[1];
    *from = pout[0];
    return load;
}

/* Starts the daemons of one case on a topic set of its own; the gateway's
 * pid, or -1. */
static pid_t start_daemons(const gwcase_t *c, const char *portstr, pid_t *pr)
{
    char prefix[64], keypub[PATH_MAX], logpath[PATH_MAX];
    pid_t gw;
    snprintf(prefix, sizeof prefix, "gwmem%ld%s", (long)getpid(), c->name);
    snprintf(keypub, sizeof keypub, "%s/key.pub", b_dir);
    if (b_create_topics(prefix, 4) != 0)
        return -1;
    if (strcmp(c->name, "docs") == 0) {
        char *args[] = {(char *)c->prbin, "--bootstrap", (char *)b_bootstrap, "--prefix", prefix,
                        "--partitions", "4", "--http.port", "-1", NULL};
        snprintf(logpath, sizeof logpath, "%s/processor.log", b_dir);
        if ((*pr = b_spawn(args, logpath, -1)) < 0)
            return -1;
    }
    snprintf(logpath, sizeof logpath, "%s/gateway-%s.log", b_dir, c->name);
    char *args[] = {(char *)c->gwbin, "--bootstrap", (char *)b_bootstrap, "--prefix", prefix,
                    "--partitions", "4", "--jwt.keys", keypub, "--port", (char *)portstr,
                    "--log.level", "warn", "--hello.timeout.ms", "60s", NULL};
    if ((gw = b_spawn(args, logpath, -1)) < 0)
        return -1;
    int port = atoi(portstr);
    for (double t = b_now() + 60; b_http_get(port, "/healthz", NULL, 0) != 200; b_sleep_ms(100))
        if (b_now() > t || waitpid(gw, NULL, WNOHANG) == gw) {
            fprintf(stderr, "gateway-memory: the gateway did not start (%s)\n", logpath);
            return -1;
        }
    return gw;
}

/* One case: the gateway's RSS before and with the N connections. */
static int run_case(gwcase_t *c, char *metrics)
{
    char portstr[16], keysec[PATH_MAX], line[128];
    pid_t gw, pr = -1, load = -1;
    int to = -1, from = -1, rc = -1, port = 20000 + (int)((getpid() + c->name[0]) % 10000);
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(keysec, sizeof keysec, "%s/key", b_dir);
    if ((gw = start_daemons(c, portstr, &pr)) < 0)
        goto done;
    c->rss0 = settled_rss(gw);
    if ((load = start_load(c, portstr, keysec, &to, &from)) < 0)
        goto done;
    if (read_line(from, line, sizeof line, 600000) != 0 || strncmp(line, "ready", 5)) {
        fprintf(stderr, "gateway-memory: the load process failed (%s/load-%s.log)\n", b_dir,
                c->name);
        goto done;
    }
    c->rssn = settled_rss(gw);
    if (b_http_get(port, "/metrics", metrics, 1 << 20) != 200 ||
        b_metric(metrics, "flushline_gateway_connections") != (double)c->n) {
        fprintf(stderr, "gateway-memory: the gateway does not report %ld connections\n", c->n);
        goto done;
    }
    rc = 0;
done:
    if (to >= 0)
        close(to); /* the load process lets go */
    if (from >= 0)
        close(from);
    b_stop(load, SIGTERM);
    b_stop(gw, SIGTERM);
    b_stop(pr, SIGTERM);
    b_delete_topics(); /* each case has a topic set of its own */
    return rc;
}

int main(int argc, char **argv)
{
    char *metrics = malloc(1 << 20);
    long n = argc > 1 ? atol(argv[1]) : 10000;
    gwcase_t cases[2] = {{"idle", getenv("FL_GATEWAY_BIN"), getenv("FL_PROCESSOR_BIN"), n},
                         {"docs", getenv("FL_GATEWAY_BIN"), getenv("FL_PROCESSOR_BIN"), n}};
    int rc = 1;

    if (argc > 1 && strcmp(argv[1], "load") == 0) {
        load_docs = argc == 6 && strcmp(argv[5], "docs") == 0;
        return argc == 6 ? load_main(atoi(argv[2]), atol(argv[3]), argv[4]) : 2;
    }
    if (n < 1 || n > 100000 || !metrics) {
        fprintf(stderr, "usage: gateway-memory [N]\n");
        return 2;
    }
    if (!(b_bootstrap = getenv("FLUSHLINE_BOOTSTRAP")) || !cases[0].gwbin || !cases[0].prbin) {
        fprintf(stderr, "gateway-memory: set FLUSHLINE_BOOTSTRAP, FL_GATEWAY_BIN and "
                        "FL_PROCESSOR_BIN (bench/run gateway-memory does)\n");
        return 2;
    }
    if (readlink("/proc/self/exe", b_self, sizeof b_self - 1) < 0)
        return 2;
    signal(SIGINT, b_on_fatal);
    signal(SIGTERM, b_on_fatal);
    signal(SIGALRM, b_on_fatal);
    alarm(1500);
    b_raise_nofile();
    snprintf(b_dir, sizeof b_dir, "/tmp/flbench-gwmem.XXXXXX");
    if (!mkdtemp(b_dir) || b_make_key() != 0) {
        fprintf(stderr, "gateway-memory: cannot make the key\n");
        return 2;
    }
    for (int i = 0; i < 2; i++) {
        if (run_case(&cases[i], metrics) != 0)
            goto done;
        printf("%s: gateway RSS %lld bytes with 0 connections, %lld with %ld authenticated "
               "connections (%ld distinct users%s): %lld bytes per connection\n",
               cases[i].name, cases[i].rss0, cases[i].rssn, n, n,
               i ? ", each subscribed to a document of its own" : ", idle",
               (cases[i].rssn - cases[i].rss0) / n);
    }
    printf("gateway-memory: %lld bytes per idle authenticated connection, %lld with a document "
           "of its own each, at %ld connections (bar 8192)\n",
           (cases[0].rssn - cases[0].rss0) / n, (cases[1].rssn - cases[1].rss0) / n, n);
    rc = 0;
done:
    b_kill_children();
    b_delete_topics();
    if (rc == 0) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf %s", b_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", b_dir);
    } else {
        fprintf(stderr, "gateway-memory: logs kept in %s\n", b_dir);
    }
    free(metrics);
    return rc;
}
