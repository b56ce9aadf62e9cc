/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench/fanout: deltas delivered per second per core by flushline-gateway
 * to S subscribers of one document (SPEC bar: >= 250,000 per core), with a
 * baseline in the same run.
 *
 * Gateway run: a throwaway topic set, flushline-processor and
 * flushline-gateway (Release builds). A receiving process (this program,
 * mode "recv") opens S WebSocket connections, sends hello and subscribe,
 * and once every one has its snapshot says "ready". The bench then reads
 * the gateway's CPU time (/proc/PID/stat utime + stime), and one writer
 * connection (the bench itself) sends K flushes of one `incr` to the
 * document (up to W unanswered), through Kafka and the processor. The
 * receiver counts the `deltas` frames of every subscriber and says "done"
 * when all K x S arrived; the gateway's CPU is read again.
 * Result: K x S / gateway CPU seconds (deltas per second per core), and
 * the wall-clock rate.
 *
 * Baseline: a minimal libwebsockets broadcast server (mode "lwsbase", the
 * same lws version and settings) gets the S connections of the same
 * receiver and, once they are all open, writes the very same K delta
 * frames (recorded by subscriber 0 in the gateway run: same sizes, same
 * bytes) to each, from a preloaded array, as many per writable callback as
 * the socket takes. Its CPU per delivered frame is measured the same way.
 * The ratio is gateway / baseline.
 *
 * W = 1 is the worst case for the gateway: every delta is a write of its
 * own (with more in flight, the deltas of one transaction of the processor
 * reach a connection together and go out in one write).
 *
 * Usage: fanout [K [S [W]]]   (defaults 2000 flushes, 1000 subscribers, W 64; needs
 *                          FLUSHLINE_BOOTSTRAP, FL_GATEWAY_BIN,
 *                          FL_PROCESSOR_BIN; bench/fanout.sh sets them)
 */
#include <libwebsockets.h>
#include <poll.h>

#include "fanout.h"
#include "flushline/wire.h"

static long window = 64; /* unanswered flushes of the writer */

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

/* ---- the receiving process ----------------------------------------------------- */

static bool recv_gateway; /* gateway mode: hello, subscribe, snapshot, then deltas */
static const char *recv_doc;
static uint32_t recv_ready;
static uint64_t recv_deltas;
static FILE *recv_record; /* subscriber 0's delta frames, for the baseline */
static b_ws_t *recv_ws;

static void on_recv_frame(b_ws_t *ws, const unsigned char *p, size_t n)
{
    if (!recv_gateway) {
        recv_deltas++;
        return;
    }
    if (ws->frames == 1) { /* welcome: subscribe */
        fl_wire_msg_t msg;
        char *out = NULL, errstr[128];
        size_t len;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_SUBSCRIBE;
        msg.u.sub.doc = (fl_slice_t){recv_doc, strlen(recv_doc)};
        if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) == 0)
            b_ws_send(ws, out, len);
        free(out);
    } else if (ws->frames == 2) { /* the snapshot */
        recv_ready++;
    } else {
        recv_deltas++;
        if (ws == recv_ws && recv_record) {
            uint32_t len = (uint32_t)n;
            fwrite(&len, sizeof len, 1, recv_record);
            fwrite(p, 1, n, recv_record);
        }
    }
}

/* recv gateway|baseline PORT S DOC TOKENKEY TARGET RECORDFILE */
static int recv_main(int argc, char **argv)
{
    int port, ep = epoll_create1(EPOLL_CLOEXEC), k;
    long s;
    uint64_t target;
    fl_jwt_keyfile_t *kf = NULL;
    unsigned char *scratch = malloc(1 << 18);
    struct epoll_event evs[256];
    char errstr[256];
    double deadline, first = 0, last = 0;
    bool said_ready = false;

    if (argc != 9)
        return 2;
    recv_gateway = strcmp(argv[2], "gateway") == 0;
    port = atoi(argv[3]);
    s = atol(argv[4]);
    recv_doc = argv[5];
    target = strtoull(argv[7], NULL, 10);
    b_raise_nofile();
    if (!(recv_ws = calloc((size_t)s, sizeof *recv_ws)) || !scratch || ep < 0)
        return 1;
    if (recv_gateway) {
        fl_wire_msg_t msg;
        char *tok, *out = NULL;
        size_t len;
        if (fl_jwt_keyfile_read(argv[6], &kf, errstr, sizeof errstr) || !(tok = b_token(kf, "sub")))
            return 1;
        memset(&msg, 0, sizeof msg);
        msg.type = FL_WT_HELLO;
        msg.u.hello.token = (fl_slice_t){tok, strlen(tok)};
        if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) != 0)
            return 1;
        for (long i = 0; i < s; i++) {
            recv_ws[i].greeting = out;
            recv_ws[i].greetlen = len;
        }
        if (!(recv_record = fopen(argv[8], "w")))
            return 1;
    }
    for (long i = 0; i < s; i++) {
        b_ws_t *w = &recv_ws[i];
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
        if ((w->fd = b_tcp_connect(port, false)) < 0 || b_ws_upgrade(w) != 0) {
            fprintf(stderr, "recv: connect %ld: %s\n", i, strerror(errno));
            return 1;
        }
        fcntl(w->fd, F_SETFL, O_NONBLOCK);
        epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev);
        if (!recv_gateway)
            recv_ready++;
        /* let the upgrades through in small groups */
        if (i % 64 == 63)
            while ((k = epoll_wait(ep, evs, 256, 0)) > 0)
                for (int j = 0; j < k; j++)
                    b_ws_read(evs[j].data.ptr, scratch, 1 << 18, on_recv_frame);
    }
    deadline = b_now() + 600;
    while (b_now() < deadline) {
        if (!said_ready && recv_ready == (uint32_t)s) {
            printf("ready\n");
            fflush(stdout);
            said_ready = true;
        }
        if (recv_deltas >= target && said_ready)
            break;
        k = epoll_wait(ep, evs, 256, 100);
        for (int j = 0; j < k; j++) {
            uint64_t before = recv_deltas;
            if (b_ws_read(evs[j].data.ptr, scratch, 1 << 18, on_recv_frame) != 0) {
                fprintf(stderr, "recv: a subscriber was closed (%llu deltas)\n",
                        (unsigned long long)recv_deltas);
                return 1;
            }
            if (recv_deltas > before) {
                last = b_now();
                if (first == 0)
                    first = last;
            }
        }
    }
    if (recv_record)
        fclose(recv_record);
    printf("done %llu %.6f\n", (unsigned long long)recv_deltas, last - first);
    fflush(stdout);
    /* hold the connections until the bench is done with the server */
    for (;;) {
        struct pollfd pfd = {0, POLLIN, 0};
        char c;
        if (poll(&pfd, 1, 1000) > 0 && read(0, &c, 1) <= 0)
            break;
    }
    return recv_deltas >= target ? 0 : 1;
}

/* ---- the lws broadcast baseline ------------------------------------------------------- */

typedef struct base_msg_s {
    size_t len;
    unsigned char *data; /* LWS_PRE headroom, then len bytes */
} base_msg_t;

static base_msg_t *base_msgs;
static uint32_t base_nmsgs, base_conns, base_want;
static bool base_started;
static struct lws_context *base_ctx;
static lws_sorted_usec_list_t base_sul;

typedef struct base_pss_s {
    uint32_t next;
} base_pss_t;

static int on_base(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len);
static struct lws_protocols base_protocols[] = {
    {"flushline", on_base, sizeof(base_pss_t), 2048, 0, NULL, 65536},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void base_start(lws_sorted_usec_list_t *sul)
{
    (void)sul;
    base_started = true;
    lws_callback_on_writable_all_protocol(base_ctx, &base_protocols[0]);
}

static int on_base(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    base_pss_t *pss = user;
    (void)in;
    (void)len;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        pss->next = 0;
        if (++base_conns == base_want)
            lws_sul_schedule(base_ctx, 0, &base_sul, base_start, 1000 * LWS_US_PER_MS);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!base_started)
            return 0;
        while (pss->next < base_nmsgs) {
            base_msg_t *m = &base_msgs[pss->next];
            if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_BINARY) < (int)m->len)
                return -1;
            pss->next++;
            if (lws_send_pipe_choked(wsi))
                break;
        }
        if (pss->next < base_nmsgs)
            lws_callback_on_writable(wsi);
        return 0;
    default:
        return 0;
    }
}

/* lwsbase PORT S RECORDFILE */
static int lwsbase_main(int argc, char **argv)
{
    struct lws_context_creation_info info;
    FILE *f;
    uint32_t len, cap = 0;

    if (argc != 5)
        return 2;
    b_raise_nofile();
    base_want = (uint32_t)atoi(argv[3]);
    if (!(f = fopen(argv[4], "r")))
        return 1;
    while (fread(&len, sizeof len, 1, f) == 1) {
        if (base_nmsgs == cap) {
            cap = cap ? cap * 2 : 1024;
            if (!(base_msgs = realloc(base_msgs, cap * sizeof *base_msgs)))
                return 1;
        }
        base_msg_t *m = &base_msgs[base_nmsgs++];
        m->len = len;
        if (!(m->data = malloc(LWS_PRE + len)) || fread(m->data + LWS_PRE, 1, len, f) != len)
            return 1;
    }
    fclose(f);
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.port = atoi(argv[2]);
    info.iface = "127.0.0.1";
    info.protocols = base_protocols;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    info.gid = info.uid = -1;
    if (!(base_ctx = lws_create_context(&info)))
        return 1;
    fprintf(stderr, "lwsbase: %u frames to %u connections\n", base_nmsgs, base_want);
    while (lws_service(base_ctx, 0) >= 0)
        ;
    lws_context_destroy(base_ctx);
    return 0;
}

/* ---- the bench ------------------------------------------------------------------------- */

typedef struct run_s {
    double cpu, wall;
    uint64_t frames;
} run_t;

/* Starts the receiver, waits for "ready", runs fn (the load), waits for
 * "done", reading server's CPU around it. */
static int measure(pid_t server, const char *mode, int port, long s, const char *doc,
                   uint64_t target, int (*load)(void *), void *arg, run_t *out, int *hold_fd)
{
    char portstr[16], sstr[16], tstr[32], keypath[PATH_MAX], rec[PATH_MAX], logpath[PATH_MAX];
    char line[128];
    int po[2], pi[2];
    double cpu0;
    pid_t r;
    unsigned long long frames;

    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(sstr, sizeof sstr, "%ld", s);
    snprintf(tstr, sizeof tstr, "%llu", (unsigned long long)target);
    snprintf(keypath, sizeof keypath, "%s/key", b_dir);
    snprintf(rec, sizeof rec, "%s/frames.bin", b_dir);
    snprintf(logpath, sizeof logpath, "%s/recv-%s.log", b_dir, mode);
    if (pipe(po) != 0 || pipe(pi) != 0)
        return -1;
    {
        char *args[] = {b_self, "recv", (char *)mode, portstr, sstr, (char *)doc, keypath, tstr,
                        rec, NULL};
        pid_t parent = getpid();
        int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || (r = fork()) < 0)
            return -1;
        if (r == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            dup2(pi[0], 0);
            dup2(po[1], 1);
            dup2(fd, 2);
            execv(args[0], args);
            _exit(127);
        }
        close(fd);
        close(po[1]);
        close(pi[0]);
        for (int i = 0; i < B_MAX_CHILDREN; i++)
            if (!b_children[i]) {
                b_children[i] = r;
                break;
            }
    }
    *hold_fd = pi[1];
    if (read_line(po[0], line, sizeof line, 120000) != 0 || strcmp(line, "ready") != 0) {
        fprintf(stderr, "fanout: the receiver did not get ready (%s)\n", logpath);
        close(po[0]);
        return -1;
    }
    cpu0 = b_cpu(server);
    if (load && load(arg) != 0) {
        close(po[0]);
        return -1;
    }
    if (read_line(po[0], line, sizeof line, 600000) != 0 ||
        sscanf(line, "done %llu %lf", &frames, &out->wall) != 2 || frames < target) {
        fprintf(stderr, "fanout: the receiver did not get every delta (%s)\n", logpath);
        close(po[0]);
        return -1;
    }
    out->cpu = b_cpu(server) - cpu0;
    out->frames = frames;
    close(po[0]);
    (void)r;
    return 0;
}

typedef struct writer_s {
    int port;
    long k;
    const char *doc;
} writer_t;

static uint64_t writer_outcomes;

static void on_writer_frame(b_ws_t *ws, const unsigned char *p, size_t n)
{
    (void)ws;
    if (memmem(p, n, "outcome", 7))
        writer_outcomes++;
    else if (!memmem(p, n, "welcome", 7))
        fprintf(stderr, "writer: unexpected frame (%.*s)\n", (int)(n > 80 ? 80 : n), p);
}

/* One writer connection: K flushes of one incr, up to `window` unanswered. */
static int writer_run(void *arg)
{
    writer_t *w = arg;
    b_ws_t ws;
    fl_jwt_keyfile_t *kf = NULL;
    char keypath[PATH_MAX], errstr[256], *tok, *out = NULL;
    unsigned char *scratch = malloc(1 << 16);
    fl_wire_msg_t msg;
    fl_cmd_t cmd;
    size_t len;
    long sent = 0;
    double deadline = b_now() + 300;

    memset(&ws, 0, sizeof ws);
    snprintf(keypath, sizeof keypath, "%s/key", b_dir);
    if (!scratch || fl_jwt_keyfile_read(keypath, &kf, errstr, sizeof errstr) ||
        !(tok = b_token(kf, "writer")))
        return -1;
    fl_jwt_keyfile_free(kf);
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_HELLO;
    msg.u.hello.token = (fl_slice_t){tok, strlen(tok)};
    if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &out, &len, errstr, sizeof errstr) != 0)
        return -1;
    free(tok);
    ws.greeting = out;
    ws.greetlen = len;
    if ((ws.fd = b_tcp_connect(w->port, false)) < 0 || b_ws_upgrade(&ws) != 0)
        return -1;
    fcntl(ws.fd, F_SETFL, O_NONBLOCK);
    memset(&cmd, 0, sizeof cmd);
    cmd.op = FL_OP_INCR;
    cmd.path = FL_SLICE("/n");
    cmd.has_value = true;
    cmd.value.type = FL_INT;
    cmd.value.u.i = 1;
    memset(&msg, 0, sizeof msg);
    msg.type = FL_WT_FLUSH;
    msg.u.flush.doc = (fl_slice_t){w->doc, strlen(w->doc)};
    for (int i = 0; i < FL_CLIENT_ID_LEN; i++)
        msg.u.flush.client_id[i] = (uint8_t)(getpid() >> (i % 4)) ^ (uint8_t)i;
    msg.u.flush.ncmds = 1;
    msg.u.flush.cmds = &cmd;
    while ((long)writer_outcomes < w->k && b_now() < deadline) {
        struct pollfd pfd = {ws.fd, POLLIN, 0};
        while (ws.state == WS_OPEN && ws.frames > 0 && sent < w->k &&
               sent - (long)writer_outcomes < window) {
            char *f = NULL;
            msg.u.flush.seq = (uint64_t)++sent;
            if (fl_wire_encode(&msg, FL_WIRE_MSGPACK, &f, &len, errstr, sizeof errstr) != 0 ||
                b_ws_send(&ws, f, len) != 0) {
                fprintf(stderr, "writer: %s\n", errstr);
                free(f);
                return -1;
            }
            free(f);
        }
        if (poll(&pfd, 1, 100) > 0 && b_ws_read(&ws, scratch, 1 << 16, on_writer_frame) != 0) {
            fprintf(stderr, "writer: the gateway closed the connection\n");
            return -1;
        }
    }
    close(ws.fd);
    free(ws.in);
    free(out);
    free(scratch);
    return (long)writer_outcomes >= w->k ? 0 : -1;
}

static pid_t wait_http(pid_t pid, int port)
{
    for (double t = b_now() + 60; b_http_get(port, "/healthz", NULL, 0) != 200; b_sleep_ms(100))
        if (b_now() > t || waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
    return pid;
}

int main(int argc, char **argv)
{
    const char *gwbin = getenv("FL_GATEWAY_BIN"), *prbin = getenv("FL_PROCESSOR_BIN");
    char prefix[64], doc[96], keypub[PATH_MAX], portstr[16], logpath[PATH_MAX], sstr[16];
    char recpath[PATH_MAX];
    long k = 2000, s = 1000;
    pid_t gw = -1, pr = -1, base = -1;
    int port, rc = 1, hold = -1;
    run_t g, b;
    writer_t w;

    if (argc > 1 && strcmp(argv[1], "recv") == 0)
        return recv_main(argc, argv);
    if (argc > 1 && strcmp(argv[1], "lwsbase") == 0)
        return lwsbase_main(argc, argv);
    if (argc > 1)
        k = atol(argv[1]);
    if (argc > 2)
        s = atol(argv[2]);
    if (argc > 3)
        window = atol(argv[3]);
    if (k < 1 || s < 1 || s > 10000 || window < 1) {
        fprintf(stderr, "usage: fanout [K [S [W]]]\n");
        return 2;
    }
    if (!(b_bootstrap = getenv("FLUSHLINE_BOOTSTRAP")) || !gwbin || !prbin) {
        fprintf(stderr, "fanout: set FLUSHLINE_BOOTSTRAP, FL_GATEWAY_BIN and FL_PROCESSOR_BIN "
                        "(bench/run fanout does)\n");
        return 2;
    }
    if (readlink("/proc/self/exe", b_self, sizeof b_self - 1) < 0)
        return 2;
    signal(SIGINT, b_on_fatal);
    signal(SIGTERM, b_on_fatal);
    signal(SIGALRM, b_on_fatal);
    signal(SIGPIPE, SIG_IGN);
    alarm(1200);
    b_raise_nofile();
    snprintf(b_dir, sizeof b_dir, "/tmp/flbench-fanout.XXXXXX");
    if (!mkdtemp(b_dir) || b_make_key() != 0)
        return 2;
    snprintf(prefix, sizeof prefix, "fanout%ld", (long)getpid());
    snprintf(doc, sizeof doc, "bench/fanout-%ld", (long)getpid());
    snprintf(keypub, sizeof keypub, "%s/key.pub", b_dir);
    snprintf(recpath, sizeof recpath, "%s/frames.bin", b_dir);
    snprintf(sstr, sizeof sstr, "%ld", s);
    if (b_create_topics(prefix, 4) != 0)
        goto done;
    snprintf(logpath, sizeof logpath, "%s/processor.log", b_dir);
    {
        char *args[] = {(char *)prbin, "--bootstrap", (char *)b_bootstrap, "--prefix", prefix,
                        "--partitions", "4", "--http.port", "-1", NULL};
        if ((pr = b_spawn(args, logpath, -1)) < 0)
            goto done;
    }
    port = 20000 + (int)(getpid() % 10000);
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(logpath, sizeof logpath, "%s/gateway.log", b_dir);
    {
        /* no rate limit for the one writer; room for bursts in the queues */
        char *args[] = {(char *)gwbin, "--bootstrap", (char *)b_bootstrap, "--prefix", prefix,
                        "--partitions", "4", "--jwt.keys", keypub, "--port", portstr,
                        "--log.level", "warn", "--rate", "1000000", "--burst", "1000000",
                        "--send.queue.bytes", "64M", NULL};
        if ((gw = b_spawn(args, logpath, -1)) < 0 || wait_http(gw, port) < 0) {
            fprintf(stderr, "fanout: the gateway did not start (%s)\n", logpath);
            goto done;
        }
    }
    w = (writer_t){port, k, doc};
    if (measure(gw, "gateway", port, s, doc, (uint64_t)k * (uint64_t)s, writer_run, &w, &g,
                &hold) != 0)
        goto done;
    close(hold);
    hold = -1;
    b_stop(gw, SIGTERM);
    b_stop(pr, SIGTERM);
    gw = pr = -1;

    port++;
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(logpath, sizeof logpath, "%s/lwsbase.log", b_dir);
    {
        char *args[] = {b_self, "lwsbase", portstr, sstr, recpath, NULL};
        if ((base = b_spawn(args, logpath, -1)) < 0)
            goto done;
    }
    b_sleep_ms(500); /* it loads the frames and listens */
    if (measure(base, "baseline", port, s, doc, (uint64_t)k * (uint64_t)s, NULL, NULL, &b,
                &hold) != 0)
        goto done;
    close(hold);
    hold = -1;
    b_stop(base, SIGTERM);
    base = -1;
    {
        double gpc = (double)g.frames / g.cpu, bpc = (double)b.frames / b.cpu;
        printf("gateway: %llu deltas (%ld flushes x %ld subscribers, writer window %ld) in %.2f s "
               "wall, %.2f CPU s (%.0f deltas/s wall)\n",
               (unsigned long long)g.frames, k, s, window, g.wall, g.cpu,
               (double)g.frames / g.wall);
        printf("lws broadcast baseline: %llu frames in %.2f s wall, %.2f CPU s (%.0f frames/s "
               "wall)\n",
               (unsigned long long)b.frames, b.wall, b.cpu, (double)b.frames / b.wall);
        printf("fanout: %.0f deltas/s per core to %ld subscribers (lws broadcast baseline %.0f/s, "
               "ratio %.2f)\n",
               gpc, s, bpc, gpc / bpc);
    }
    rc = 0;
done:
    if (hold >= 0)
        close(hold);
    b_stop(base, SIGTERM);
    b_stop(gw, SIGTERM);
    b_stop(pr, SIGTERM);
    b_kill_children();
    b_delete_topics();
    if (rc == 0) {
        char cmd[PATH_MAX + 16];
        snprintf(cmd, sizeof cmd, "rm -rf %s", b_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", b_dir);
    } else {
        fprintf(stderr, "fanout: logs kept in %s\n", b_dir);
    }
    return rc;
}
