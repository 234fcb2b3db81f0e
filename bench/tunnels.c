/* Opens CONNECT tunnels through an HTTP proxy as fast as it can, for a fixed time: each connection sends
 * one CONNECT, reads the response head, and closes. Prints tunnels opened and failures.
 *   tunnels PROXY_PORT AUTHORITY AUTH_HEADER_VALUE SECONDS THREADS
 * Loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, seconds;
static char request[4096];
static double deadline;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg) {
    long *counts = arg; /* [ok, failed] */
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char buf[4096];
    while (now() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0 && write(fd, request, strlen(request)) > 0;
        int got = 0;
        while (ok && got < (int)sizeof buf - 1) {
            int n = read(fd, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += n;
            buf[got] = 0;
            if (strstr(buf, "\r\n\r\n")) break;
        }
        if (ok && got > 12 && strncmp(buf + 9, "200", 3) == 0) counts[0]++; else counts[1]++;
        close(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s PROXY_PORT AUTHORITY AUTH SECONDS THREADS\n", argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    seconds = atoi(argv[4]);
    int threads = atoi(argv[5]);
    snprintf(request, sizeof request, "CONNECT %s HTTP/1.1\r\nHost: %s\r\nProxy-Authorization: %s\r\n\r\n",
             argv[2], argv[2], argv[3]);
    deadline = now() + seconds;
    pthread_t ids[64];
    long counts[64][2] = {{0}};
    for (int i = 0; i < threads && i < 64; i++) pthread_create(&ids[i], NULL, worker, counts[i]);
    long ok = 0, failed = 0;
    for (int i = 0; i < threads && i < 64; i++) {
        pthread_join(ids[i], NULL);
        ok += counts[i][0];
        failed += counts[i][1];
    }
    printf("%ld %ld\n", ok, failed);
    return 0;
}
