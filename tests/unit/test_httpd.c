/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for the small HTTP server: start on port 0, talk to it with a
 * plain-socket client written here, check status lines and bodies for
 * /metrics (rendered from a real registry), 404, 405, keep-alive, a handler
 * status, and that stop leaves no thread behind.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fl_test.h"
#include "flushline/httpd.h"
#include "flushline/metrics.h"

typedef struct app_s {
    fl_metrics_t *reg;
    fl_counter_t *requests;
} app_t;

static void on_request(void *opaque, const char *path, fl_httpd_response_t *resp)
{
    app_t *app = opaque;
    fl_counter_inc(app->requests);
    if (strcmp(path, "/metrics") == 0) {
        resp->status = 200;
        resp->content_type = FL_METRICS_CONTENT_TYPE;
        if (fl_metrics_render(app->reg, &resp->body, &resp->body_len) != 0)
            resp->status = 500;
    } else if (strcmp(path, "/healthz") == 0) {
        resp->status = 200;
        resp->body = strdup("ok\n");
        resp->body_len = 3;
    } else if (strcmp(path, "/readyz") == 0) {
        resp->status = 503;
        resp->body = strdup("not ready\n");
        resp->body_len = 10;
    }
}

static int connect_local(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (headers + Content-Length body) from fd into buf. */
static int read_response(int fd, char *buf, size_t size, int *status, const char **body)
{
    size_t n = 0;
    char *hdr_end = NULL, *cl;
    long clen = -1;

    buf[0] = '\0';
    for (;;) {
        ssize_t r;
        if (hdr_end && clen >= 0 && (size_t)(hdr_end + 4 - buf) + (size_t)clen <= n)
            break;
        if (n + 1 >= size)
            return -1;
        r = read(fd, buf + n, size - n - 1);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (!hdr_end && (hdr_end = strstr(buf, "\r\n\r\n"))) {
            cl = strcasestr(buf, "content-length:");
            if (!cl || cl > hdr_end)
                return -1;
            clen = strtol(cl + 15, NULL, 10);
        }
    }
    if (sscanf(buf, "HTTP/1.1 %d", status) != 1)
        return -1;
    hdr_end[2] = '\0'; /* keep the last header's CRLF for searches */
    *body = hdr_end + 4;
    return 0;
}

/* One request on a new connection; the status, and the body into body_out. */
static int request(int port, const char *req, char *buf, size_t size, const char **body)
{
    int fd = connect_local(port), status = -1;
    if (fd < 0)
        return -1;
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) ||
        read_response(fd, buf, size, &status, body) != 0)
        status = -2;
    close(fd);
    return status;
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    int n = 0;
    if (!d)
        return -1;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void test_endpoints(void)
{
    static char buf[65536];
    char errstr[256] = "";
    const char *body;
    app_t app;
    fl_httpd_t *h;
    int port, threads_running;

    app.reg = fl_metrics_new();
    app.requests = fl_metrics_counter(app.reg, "http_requests_total", "Requests.");
    h = fl_httpd_start("127.0.0.1", 0, on_request, &app, errstr, sizeof errstr);
    ASSERT_TRUE(h != NULL);
    port = fl_httpd_port(h);
    ASSERT_GT(port, 0);
    /* (compared with the count after stop: sanitizers add threads of their own) */
    threads_running = count_threads();
    ASSERT_GT(threads_running, 1);

    fl_counter_add(app.requests, 9);
    ASSERT_EQ(request(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf, &body),
              200);
    ASSERT_TRUE(strcasestr(buf, "content-type: text/plain; version=0.0.4") != NULL);
    ASSERT_STR_EQ(body, "# HELP http_requests_total Requests.\n"
                        "# TYPE http_requests_total counter\n"
                        "http_requests_total 10\n");

    ASSERT_EQ(request(port, "GET /nope?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf, &body),
              404);
    ASSERT_STR_EQ(body, "not found\n");

    ASSERT_EQ(request(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                      buf, sizeof buf, &body),
              405);
    ASSERT_TRUE(strcasestr(buf, "allow: GET") != NULL);
    ASSERT_STR_EQ(body, "method not allowed\n");

    ASSERT_EQ(request(port, "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf,
                      &body),
              405);

    ASSERT_EQ(request(port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", buf, sizeof buf, &body),
              503);
    ASSERT_STR_EQ(body, "not ready\n");

    /* two requests on one keep-alive connection */
    {
        int fd = connect_local(port), status = 0;
        const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        ASSERT_TRUE(fd >= 0);
        for (int i = 0; i < 2; i++) {
            ASSERT_EQ(write(fd, req, strlen(req)), (long long)strlen(req));
            ASSERT_EQ(read_response(fd, buf, sizeof buf, &status, &body), 0);
            ASSERT_EQ(status, 200);
            ASSERT_STR_EQ(body, "ok\n");
        }
        close(fd);
    }

    /* a connection left open must not block stop */
    {
        int idle = connect_local(port);
        ASSERT_TRUE(idle >= 0);
        fl_httpd_stop(h);
        close(idle);
    }
    ASSERT_EQ(count_threads(), threads_running - 1);
    /* the port is closed */
    ASSERT_EQ(connect_local(port), -1);
    fl_metrics_free(app.reg);
}

static void test_big_body(void)
{
    static char buf[1 << 20];
    char errstr[256] = "";
    const char *body;
    app_t app;
    fl_httpd_t *h;

    /* a registry large enough that the body needs several socket writes */
    app.reg = fl_metrics_new();
    app.requests = NULL;
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "metric_%d_total", i);
        ASSERT_TRUE(fl_metrics_counter_vec_n(app.reg, name, "A counter with a longer help text.",
                                             "partition", 64) != NULL);
    }
    h = fl_httpd_start("127.0.0.1", 0, on_request, &app, errstr, sizeof errstr);
    ASSERT_TRUE(h != NULL);
    ASSERT_EQ(request(fl_httpd_port(h), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", buf,
                      sizeof buf, &body),
              200);
    {
        char *want;
        size_t len;
        ASSERT_EQ(fl_metrics_render(app.reg, &want, &len), 0);
        ASSERT_GT(len, 65536);
        ASSERT_MEM_EQ(body, strlen(body), want, len);
        free(want);
    }
    fl_httpd_stop(h);
    fl_metrics_free(app.reg);
}

static void test_bind_errors(void)
{
    char errstr[256] = "";
    app_t app = {0};
    fl_httpd_t *a, *b;

    a = fl_httpd_start("127.0.0.1", 0, on_request, &app, errstr, sizeof errstr);
    ASSERT_TRUE(a != NULL);
    /* the same port again is refused with a message */
    b = fl_httpd_start("127.0.0.1", fl_httpd_port(a), on_request, &app, errstr, sizeof errstr);
    ASSERT_TRUE(b == NULL);
    ASSERT_TRUE(strstr(errstr, "cannot listen on 127.0.0.1:") != NULL);
    fl_httpd_stop(a);
    ASSERT_TRUE(fl_httpd_start("127.0.0.1", 70000, on_request, &app, errstr, sizeof errstr) ==
                NULL);
    fl_httpd_stop(NULL);
}

int main(void)
{
    RUN(test_endpoints);
    RUN(test_big_body);
    RUN(test_bind_errors);
    return fl_test_done();
}
