/* Opens CONNECT tunnels through an HTTP proxy as fast as it can, for a fixed time, from one thread that
 * keeps CONNECTIONS tunnels being set up at once (the shape of `wrk -t1 -cN`): each connection sends one
 * CONNECT, reads the response head, and closes; then a new one starts. Prints tunnels opened, failures,
 * and the median and 99th percentile of the setup time (connect to response head) in microseconds.
 *   tunnels PROXY AUTHORITY AUTH_HEADER_VALUE SECONDS CONNECTIONS [RATE]
 * PROXY is a port on 127.0.0.1, or the path of a unix socket (a session's listener). RATE, if given, caps
 * new connections a second (a paced flood). Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 256
#define MAX_SAMPLES 2000000

struct conn {
    int fd, got, sent;
    double started;
    char buf[1024];
};

static struct sockaddr_in addr;
static struct sockaddr_un unix_addr;
static int use_unix;
static char request[4096];
static int request_len, epfd;
static long ok, failed, nsamples, started;
static double rate, began;
static float *samples;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start(struct conn *c) {
    int one = 1;
    if (rate > 0 && started >= (now() - began) * rate) { /* paced: wait for its turn (the main loop retries) */
        c->fd = -1;
        return;
    }
    started++;
    c->fd = socket(use_unix ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (!use_unix) setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->got = c->sent = 0;
    c->started = now();
    struct sockaddr *to = use_unix ? (struct sockaddr *)&unix_addr : (struct sockaddr *)&addr;
    socklen_t len = use_unix ? sizeof unix_addr : sizeof addr;
    if (connect(c->fd, to, len) != 0 && errno != EINPROGRESS) {
        failed++;
        close(c->fd);
        c->fd = -1;
        return;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void finish(struct conn *c, int success) {
    if (success) {
        ok++;
        if (nsamples < MAX_SAMPLES) samples[nsamples++] = (float)((now() - c->started) * 1e6);
    } else {
        failed++;
    }
    close(c->fd); /* also removes it from the epoll set */
    c->fd = -1;
}

/* Returns 1 when the connection is done (either way). */
static int step(struct conn *c, unsigned events) {
    if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) return finish(c, 0), 1;
    if (c->sent < request_len && (events & EPOLLOUT)) {
        ssize_t n = write(c->fd, request + c->sent, request_len - c->sent);
        if (n < 0 && errno != EAGAIN) return finish(c, 0), 1;
        if (n > 0) c->sent += n;
        if (c->sent == request_len) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    if (events & EPOLLIN) {
        ssize_t n = read(c->fd, c->buf + c->got, sizeof c->buf - 1 - c->got);
        if (n <= 0) return (n < 0 && errno == EAGAIN) ? 0 : (finish(c, 0), 1);
        c->got += n;
        c->buf[c->got] = 0;
        if (strstr(c->buf, "\r\n\r\n")) return finish(c, c->got > 12 && strncmp(c->buf + 9, "200", 3) == 0), 1;
        if (c->got == (int)sizeof c->buf - 1) return finish(c, 0), 1;
    }
    return 0;
}

static int by_value(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s PROXY AUTHORITY AUTH SECONDS CONNECTIONS [RATE]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a connection the proxy closed is a failure, not the end of the run */
    use_unix = strchr(argv[1], '/') != NULL;
    unix_addr.sun_family = AF_UNIX;
    strncpy(unix_addr.sun_path, argv[1], sizeof unix_addr.sun_path - 1);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int connections = atoi(argv[5]);
    if (connections < 1 || connections > MAX_CONNECTIONS) {
        fprintf(stderr, "CONNECTIONS must be 1 to %d\n", MAX_CONNECTIONS);
        return 2;
    }
    request_len = snprintf(request, sizeof request,
                           "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n", argv[2], argv[2],
                           argv[3]);
    samples = malloc(sizeof(float) * MAX_SAMPLES);
    epfd = epoll_create1(0);
    static struct conn conns[MAX_CONNECTIONS];
    rate = argc == 7 ? atof(argv[6]) : 0;
    began = now();
    double deadline = began + atoi(argv[4]);
    for (int i = 0; i < connections; i++) start(&conns[i]);
    struct epoll_event events[MAX_CONNECTIONS];
    while (now() < deadline) {
        int n = epoll_wait(epfd, events, MAX_CONNECTIONS, rate > 0 ? 1 : 100);
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (step(c, events[i].events)) start(c);
        }
        for (int i = 0; i < connections; i++)
            if (conns[i].fd < 0) start(&conns[i]); /* a connect that failed at once */
    }
    qsort(samples, nsamples, sizeof(float), by_value);
    double p50 = nsamples ? samples[nsamples / 2] : 0, p99 = nsamples ? samples[(long)(nsamples * 0.99)] : 0;
    printf("%ld %ld %.0f %.0f\n", ok, failed, p50, p99);
    return 0;
}
