/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/gateway-memory: user-space memory per open, idle, authenticated
 * WebSocket connection of flushline-gateway (SPEC bar: <= 8 KiB).
 *
 * One run: a throwaway topic set and key; the gateway (Release build, its
 * own process, --log.level warn); its VmRSS with 0 connections is the
 * baseline. A separate load process (this program, mode "load") opens N
 * connections on 127.0.0.1 (each with a token of its own user: the worst
 * case for the gateway's shared grants), sends hello and waits for every
 * welcome; the gateway's metrics must show N connections. After 2 s of
 * settling the gateway's VmRSS is read again:
 * (RSS_N - RSS_0) / N bytes per connection. Everything started is stopped
 * and the topics are deleted; the run is bounded by an alarm.
 *
 * Usage: gateway-memory [N]     (default 10000; needs FLUSHLINE_BOOTSTRAP,
 *                                FL_GATEWAY_BIN; bench/gateway-memory.sh sets them)
 */
#include <poll.h>

#include "fanout.h"
#include "flushline/wire.h"

#define BATCH 256 /* connections being set up at once */

/* ---- the load process ------------------------------------------------------ */

static uint32_t welcomed;

static void on_load_frame(b_ws_t *ws, const unsigned char *p, size_t n)
{
    if (ws->frames == 1) {
        if (memmem(p, n, "welcome", 7))
            welcomed++;
        else
            fprintf(stderr, "load: first frame is not a welcome\n");
    }
}

static int load_main(int port, long n, const char *keypath)
{
    fl_jwt_keyfile_t *kf = NULL;
    b_ws_t *ws = calloc((size_t)n, sizeof *ws);
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

int main(int argc, char **argv)
{
    char prefix[64], keypub[PATH_MAX], keysec[PATH_MAX], portstr[16], nstr[16], logpath[PATH_MAX];
    char line[128], *metrics = malloc(1 << 20);
    const char *gwbin = getenv("FL_GATEWAY_BIN");
    long n = argc > 1 ? atol(argv[1]) : 10000;
    pid_t gw = -1, load = -1;
    int port, pipe_out[2] = {-1, -1}, pipe_in[2] = {-1, -1}, rc = 1;
    long long rss0, rssn;
    double conns;

    if (argc > 1 && strcmp(argv[1], "load") == 0)
        return argc == 5 ? load_main(atoi(argv[2]), atol(argv[3]), argv[4]) : 2;
    if (n < 1 || n > 100000 || !metrics) {
        fprintf(stderr, "usage: gateway-memory [N]\n");
        return 2;
    }
    if (!(b_bootstrap = getenv("FLUSHLINE_BOOTSTRAP")) || !gwbin) {
        fprintf(stderr, "gateway-memory: set FLUSHLINE_BOOTSTRAP and FL_GATEWAY_BIN "
                        "(bench/run gateway-memory does)\n");
        return 2;
    }
    if (readlink("/proc/self/exe", b_self, sizeof b_self - 1) < 0)
        return 2;
    signal(SIGINT, b_on_fatal);
    signal(SIGTERM, b_on_fatal);
    signal(SIGALRM, b_on_fatal);
    alarm(900);
    b_raise_nofile();
    snprintf(b_dir, sizeof b_dir, "/tmp/flbench-gwmem.XXXXXX");
    if (!mkdtemp(b_dir) || b_make_key() != 0) {
        fprintf(stderr, "gateway-memory: cannot make the key\n");
        return 2;
    }
    snprintf(prefix, sizeof prefix, "gwmem%ld", (long)getpid());
    if (b_create_topics(prefix, 4) != 0)
        goto done;
    snprintf(keypub, sizeof keypub, "%s/key.pub", b_dir);
    snprintf(keysec, sizeof keysec, "%s/key", b_dir);
    port = 20000 + (int)(getpid() % 10000);
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(logpath, sizeof logpath, "%s/gateway.log", b_dir);
    {
        char *args[] = {(char *)gwbin, "--bootstrap", (char *)b_bootstrap, "--prefix", prefix,
                        "--partitions", "4", "--jwt.keys", keypub, "--port", portstr,
                        "--log.level", "warn", "--hello.timeout.ms", "60s", NULL};
        if ((gw = b_spawn(args, logpath, -1)) < 0)
            goto done;
    }
    for (double t = b_now() + 60; b_http_get(port, "/healthz", NULL, 0) != 200; b_sleep_ms(100))
        if (b_now() > t || waitpid(gw, NULL, WNOHANG) == gw) {
            fprintf(stderr, "gateway-memory: the gateway did not start (log %s)\n", logpath);
            gw = -1;
            goto done;
        }
    rss0 = settled_rss(gw);

    if (pipe(pipe_out) != 0 || pipe(pipe_in) != 0)
        goto done;
    snprintf(nstr, sizeof nstr, "%ld", n);
    snprintf(logpath, sizeof logpath, "%s/load.log", b_dir);
    {
        char *args[] = {b_self, "load", portstr, nstr, keysec, NULL};
        pid_t parent = getpid();
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || (load = fork()) < 0)
            goto done;
        if (load == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            dup2(pipe_in[0], 0);
            dup2(pipe_out[1], 1);
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
        close(pipe_out[1]);
        close(pipe_in[0]);
        pipe_out[1] = pipe_in[0] = -1;
    }
    if (read_line(pipe_out[0], line, sizeof line, 300000) != 0 || strncmp(line, "ready", 5)) {
        fprintf(stderr, "gateway-memory: the load process failed (log %s)\n", logpath);
        goto done;
    }
    rssn = settled_rss(gw);
    if (b_http_get(port, "/metrics", metrics, 1 << 20) != 200 ||
        (conns = b_metric(metrics, "flushline_gateway_connections")) != (double)n) {
        fprintf(stderr, "gateway-memory: the gateway does not report %ld connections\n", n);
        goto done;
    }
    printf("gateway RSS: %lld bytes with 0 connections, %lld bytes with %ld idle authenticated "
           "connections (%ld distinct users)\n",
           rss0, rssn, n, n);
    printf("gateway-memory: %lld bytes per idle authenticated connection at %ld connections "
           "(baseline RSS %.1f MiB)\n",
           (rssn - rss0) / n, n, (double)rss0 / (1 << 20));
    rc = 0;
done:
    if (pipe_in[1] >= 0)
        close(pipe_in[1]); /* the load process lets go */
    b_stop(load, SIGTERM);
    b_stop(gw, SIGTERM);
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
