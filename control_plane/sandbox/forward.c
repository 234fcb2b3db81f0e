/*
 * sandgate-forward: the only process Sandgate starts inside a sandbox.
 *
 *   sandgate-forward serve PORT SOCKET   accept TCP on 127.0.0.1:PORT and splice each
 *                                        connection to the unix SOCKET (the session's
 *                                        Envoy listener), half-closes included, in one
 *                                        process (epoll). Runs as PID 1: ignores SIGCHLD
 *                                        so exited children are reaped by the kernel.
 *   sandgate-forward run SECONDS ID ARGV...
 *                                        run ARGV in its own process group; after SECONDS
 *                                        (0 = none) kill the group and exit 124. The group id
 *                                        is kept in /tmp/.sandgate/ID so that `kill ID` can end it.
 *                                        On a terminal (an interactive Exec with a PTY) the group
 *                                        becomes the terminal's foreground group, and
 *                                        SANDGATE_TTY_SIZE=ROWSxCOLS (removed from its environment)
 *                                        sets the terminal's size before ARGV starts.
 *   sandgate-forward kill ID             kill the process group of the run called ID.
 *   sandgate-forward signal ID SIGNUM    send SIGNUM to the process group of the run called ID.
 *   sandgate-forward write PATH MAX      copy stdin to PATH (mode 0644), at most MAX bytes.
 *   sandgate-forward read PATH MAX       copy PATH to stdout; fail if it is larger than MAX.
 *                                        Both refuse (exit 4) a path that is not a regular file
 *                                        (FIFO, socket, device, directory, symbolic link), and
 *                                        never open one: opening a FIFO blocks.
 *
 * Static, no libc features beyond POSIX sockets and epoll, so it works in any image.
 */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NOT_REGULAR = 4 }; /* exit code of read and write for a path that is not a regular file */

/* ---- serve: one process, one epoll loop, every connection a small state machine ----
 *
 * No fork per connection: a sandbox's pids limit also counts gVisor's own host threads, and a
 * workload that opened a few dozen tunnels at once used to exhaust it and kill PID 1. Nothing
 * off the shelf fits: socat forks per connection; rinetd and 6tunnel do not connect to unix
 * sockets and need a config file and a dynamic libc; haproxy and nginx are neither static nor
 * small. The image can be anything, so this stays one static binary with no dependencies.
 *
 * Each connection relays two directions, client -> Envoy and Envoy -> client. A direction reads
 * into a shared scratch buffer and writes at once; what the writer does not take is kept in a
 * per-direction buffer (allocated only while something is pending) and that direction stops
 * reading until it is written: back-pressure, and an idle connection holds no buffer memory.
 * EOF on one side becomes shutdown(SHUT_WR) on the other once the pending bytes are out, and the
 * other direction keeps going; both sockets close when both directions have ended, or at once on
 * an error. Epoll is edge-triggered: every event on either socket runs both directions until
 * they would block, a bounded number of reads at a time so that one busy tunnel cannot starve
 * the others (a connection that used its turn goes on a list served before the next wait). */
#define RELAY_CHUNK 65536  /* bytes read per call */
#define READS_PER_TURN 16  /* reads per direction before another connection gets a turn */
#define MAX_CONNS_WANTED 4096
#define SPARE_FDS 16       /* stdio, the listener, epoll */
#define CONNECT_TIMEOUT_S 2 /* a full Envoy backlog is waited on this long, then the client is closed */

struct pending {              /* bytes read from one side that the other has not taken yet */
    char *data;
    size_t off, len;
};
struct conn {                 /* what epoll hands back, for either of its sockets */
    int fd[2];                /* 0: the client's TCP socket, 1: Envoy's unix socket */
    struct pending out[2];    /* out[i]: read from fd[i], to be written to fd[!i] */
    unsigned char eof[2];     /* read EOF from fd[i] */
    unsigned char shut[2];    /* passed that EOF on: shutdown(fd[!i], SHUT_WR) */
    unsigned char queued;     /* on the run-again list */
    struct conn *next_ready;  /* the run-again list */
    struct conn *next_closed; /* closed in this round of events; freed after it */
};

static char relay_buf[RELAY_CHUNK];
static int open_conns, max_conns, listener_paused;
static struct conn *ready_list, *closed_list;

/* Raises the soft descriptor limit as far as the hard limit allows (no further than needed);
 * returns the limit in force. */
static int raise_nofile(void) {
    const rlim_t wanted = 2 * MAX_CONNS_WANTED + SPARE_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
    if (rl.rlim_cur < wanted) {
        rl.rlim_cur = rl.rlim_max < wanted ? rl.rlim_max : wanted;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > wanted ? (int)wanted : (int)rl.rlim_cur;
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* A unix connect completes at once unless Envoy's accept backlog is full; then it waits up to
 * CONNECT_TIMEOUT_S (SO_SNDTIMEO bounds a blocking unix connect), which briefly holds the loop but
 * is back-pressure on the one thing that is overloaded. */
static int connect_unix(const char *path) {
    struct sockaddr_un addr;
    struct timeval tv = {CONNECT_TIMEOUT_S, 0};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || set_nonblocking(fd) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void close_conn(int ep, struct conn *c) {
    for (int i = 0; i < 2; i++) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[i], NULL);
        close(c->fd[i]);
        free(c->out[i].data);
    }
    /* Later events of this round, or the run-again list, may still point at it: freed after them. */
    c->fd[0] = c->fd[1] = -1;
    c->next_closed = closed_list;
    closed_list = c;
    open_conns--;
    if (listener_paused) listener_paused = 2; /* a descriptor is free again: resume accepting */
}

/* Writes what is pending in direction `d`. Returns 1 when all of it is out, 0 if the writer would
 * block, -1 on an error. */
static int flush_pending(struct conn *c, int d) {
    struct pending *p = &c->out[d];
    while (p->off < p->len) {
        ssize_t w = send(c->fd[!d], p->data + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        p->off += (size_t)w;
    }
    free(p->data);
    p->data = NULL;
    p->off = p->len = 0;
    return 1;
}

/* Keeps what `send` did not take of relay_buf[0..n) for later. */
static int keep_pending(struct conn *c, int d, size_t from, size_t n) {
    struct pending *p = &c->out[d];
    p->data = malloc(n - from);
    if (!p->data) return -1;
    memcpy(p->data, relay_buf + from, n - from);
    p->off = 0;
    p->len = n - from;
    return 0;
}

/* Moves bytes from fd[d] to fd[!d] until one of them would block. Returns 1 if the direction still
 * has work for another turn, 0 if it waits for epoll, -1 on an error (close the connection). */
static int relay(struct conn *c, int d) {
    for (int reads = 0; !c->shut[d]; reads++) {
        int flushed = flush_pending(c, d);
        if (flushed <= 0) return flushed;
        if (c->eof[d]) { /* everything read is out: pass the EOF on */
            shutdown(c->fd[!d], SHUT_WR);
            c->shut[d] = 1;
            break;
        }
        if (reads == READS_PER_TURN) return 1;
        ssize_t n = recv(c->fd[d], relay_buf, sizeof relay_buf, 0);
        if (n == 0) c->eof[d] = 1;
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        ssize_t w = n > 0 ? send(c->fd[!d], relay_buf, (size_t)n, MSG_NOSIGNAL) : 0;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        if (w < n && keep_pending(c, d, w < 0 ? 0 : (size_t)w, (size_t)n) < 0) return -1;
    }
    return 0;
}

/* Runs both directions of `c`; closes it when both have ended or one failed. */
static void service(int ep, struct conn *c) {
    int more = 0;
    for (int d = 0; d < 2; d++) {
        int r = relay(c, d);
        if (r < 0) {
            close_conn(ep, c);
            return;
        }
        more |= r;
    }
    if (c->shut[0] && c->shut[1]) {
        close_conn(ep, c);
    } else if (more && !c->queued) {
        c->queued = 1;
        c->next_ready = ready_list;
        ready_list = c;
    }
}

/* Whether a socket whose EOF was already passed on has since failed (a reset): nothing reads it
 * any more, so only its error says that the peer is gone. */
static int ended_side_failed(struct conn *c) {
    for (int i = 0; i < 2; i++) {
        int err = 0;
        socklen_t len = sizeof err;
        if (c->shut[i] && getsockopt(c->fd[i], SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err) return 1;
    }
    return 0;
}

static int watch(int ep, struct conn *c, int side) {
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, c->fd[side], &ev);
}

static void start_conn(int ep, int client, const char *sock_path) {
    struct conn *c = calloc(1, sizeof *c);
    int upstream = c ? connect_unix(sock_path) : -1;
    if (upstream < 0) {
        free(c);
        close(client);
        return;
    }
    c->fd[0] = client;
    c->fd[1] = upstream;
    open_conns++;
    if (watch(ep, c, 0) < 0 || watch(ep, c, 1) < 0) close_conn(ep, c);
}

/* Accepts until EAGAIN. Beyond max_conns a connection is accepted and closed at once; when the
 * process is out of descriptors or memory the listener is paused until a connection ends. */
static void accept_all(int ep, int lfd, const char *sock_path) {
    for (;;) {
        int client = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                struct epoll_event ev = {.events = 0, .data.ptr = NULL};
                epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev);
                listener_paused = 1;
            }
            return;
        }
        if (open_conns >= max_conns) {
            close(client);
            continue;
        }
        int one = 1;
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        start_conn(ep, client, sock_path);
    }
}

static void resume_listener(int ep, int lfd, const char *sock_path) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    listener_paused = 0;
    epoll_ctl(ep, EPOLL_CTL_MOD, lfd, &ev);
    accept_all(ep, lfd, sock_path);
}

/* Gives each connection on the run-again list another turn, then frees the connections closed. */
static void end_round(int ep) {
    struct conn *list = ready_list;
    ready_list = NULL;
    while (list) {
        struct conn *c = list;
        list = c->next_ready;
        c->queued = 0;
        if (c->fd[0] >= 0) service(ep, c);
    }
    while (closed_list) {
        struct conn *c = closed_list;
        closed_list = c->next_closed;
        free(c);
    }
}

static int listen_tcp(int port) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in addr;
    if (lfd < 0) return -1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, SOMAXCONN) < 0) {
        close(lfd);
        return -1;
    }
    return lfd;
}

static int serve(int port, const char *sock_path) {
    signal(SIGCHLD, SIG_IGN); /* PID 1: orphaned Exec processes are reaped by the kernel */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    int nofile = raise_nofile();
    max_conns = (nofile - SPARE_FDS) / 2 < MAX_CONNS_WANTED ? (nofile - SPARE_FDS) / 2 : MAX_CONNS_WANTED;
    int lfd = listen_tcp(port);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (lfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        perror("sandgate-forward: listen");
        return 1;
    }
    struct epoll_event events[256];
    for (;;) {
        int n = epoll_wait(ep, events, 256, ready_list ? 0 : -1);
        if (n < 0 && errno != EINTR) {
            perror("sandgate-forward: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = events[i].data.ptr;
            if (!c) accept_all(ep, lfd, sock_path);
            else if (c->fd[0] >= 0) { /* not closed earlier in this round */
                service(ep, c);
                if (events[i].events & EPOLLERR && c->fd[0] >= 0 && ended_side_failed(c)) close_conn(ep, c);
            }
        }
        end_round(ep);
        if (listener_paused == 2) resume_listener(ep, lfd, sock_path);
    }
}

static pid_t child_pid;
static volatile sig_atomic_t timed_out;

static void on_alarm(int sig) {
    (void)sig;
    timed_out = 1;
    kill(-child_pid, SIGKILL);
}

static void pid_path(char *out, size_t size, const char *id) {
    snprintf(out, size, "/tmp/.sandgate/%s", id);
}

static int valid_id(const char *id) {
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return 0;
    return *id != 0 && strlen(id) < 64;
}

/* Kill a process group until it is empty: a fork bomb forks while the first kill goes through. */
static int kill_group(pid_t pgid) {
    int killed = kill(-pgid, SIGKILL) == 0;
    for (int i = 0; i < 300 && kill(-pgid, SIGKILL) == 0; i++) usleep(10000);
    return killed;
}

static int kill_run(const char *id) {
    char path[128];
    if (!valid_id(id)) return 2;
    pid_path(path, sizeof path, id);
    FILE *f = fopen(path, "r");
    int pgid = 0;
    if (!f) return 1;
    if (fscanf(f, "%d", &pgid) != 1 || pgid <= 1) pgid = 0;
    fclose(f);
    return pgid && kill_group(pgid) ? 0 : 1;
}

static int signal_run(const char *id, int signum) {
    char path[128];
    if (!valid_id(id) || signum < 1 || signum > 64) return 2;
    pid_path(path, sizeof path, id);
    FILE *f = fopen(path, "r");
    int pgid = 0;
    if (!f) return 1;
    if (fscanf(f, "%d", &pgid) != 1 || pgid <= 1) pgid = 0;
    fclose(f);
    return pgid && kill(-pgid, signum) == 0 ? 0 : 1;
}

/* The child's side of a terminal: its own group in the foreground (else reading the terminal stops
 * it with SIGTTIN), and the size the caller asked for, set before the program first looks at it. */
static void take_terminal(void) {
    if (!isatty(0)) return;
    signal(SIGTTOU, SIG_IGN); /* a background group changing the foreground group gets SIGTTOU */
    tcsetpgrp(0, getpid());
    signal(SIGTTOU, SIG_DFL);
    const char *size = getenv("SANDGATE_TTY_SIZE");
    unsigned rows = 0, cols = 0;
    if (size && sscanf(size, "%ux%u", &rows, &cols) == 2 && rows && cols) {
        struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
        ioctl(0, TIOCSWINSZ, &ws);
    }
    unsetenv("SANDGATE_TTY_SIZE");
}

static int copy_fd(int in, int out, long long max) {
    char buf[65536];
    long long total = 0;
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0) {
        total += n;
        if (max >= 0 && total > max) {
            fprintf(stderr, "sandgate-forward: more than %lld bytes\n", max);
            return 3;
        }
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, n - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                perror("sandgate-forward: write");
                return 1;
            }
            off += w;
        }
    }
    return n < 0 ? 1 : 0;
}

/* What a path is, for a refusal that says why; only regular files are read or written. */
static const char *kind_of(mode_t mode) {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a regular file";
}

static int refuse(const char *path, mode_t mode) {
    fprintf(stderr, "sandgate-forward: %s is %s; only regular files can be read or written\n", path, kind_of(mode));
    return NOT_REGULAR;
}

/*
 * Open a regular file without ever blocking: a FIFO or a device is refused from lstat, before any
 * open (an open for reading of a FIFO waits for a writer, forever). O_NONBLOCK and the fstat after
 * the open close the race with a file swapped in between; the descriptor is then made blocking.
 */
static int open_regular(const char *path, int flags, int *fd_out) {
    struct stat before, st;
    int exists = lstat(path, &before) == 0;
    if (exists && !S_ISREG(before.st_mode)) return refuse(path, before.st_mode);
    if (!exists && !(flags & O_CREAT)) {
        fprintf(stderr, "sandgate-forward: cannot read %s: %s\n", path, strerror(errno));
        return 1;
    }
    int fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0644);
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "sandgate-forward: cannot open %s: %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        return 1;
    }
    if (!S_ISREG(st.st_mode) || (exists && (st.st_dev != before.st_dev || st.st_ino != before.st_ino))) {
        close(fd);
        return refuse(path, st.st_mode);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *fd_out = fd;
    return 0;
}

static int write_file(const char *path, long long max) {
    int fd = -1;
    int rc = open_regular(path, O_WRONLY | O_CREAT, &fd);
    if (rc != 0) return rc;
    if (ftruncate(fd, 0) != 0) {
        fprintf(stderr, "sandgate-forward: cannot write %s: %s\n", path, strerror(errno));
        close(fd);
        return 1;
    }
    rc = copy_fd(0, fd, max);
    if (close(fd) != 0 && rc == 0) rc = 1;
    if (rc != 0) unlink(path);
    return rc;
}

static int read_file(const char *path, long long max) {
    int fd = -1;
    struct stat st;
    int rc = open_regular(path, O_RDONLY, &fd);
    if (rc != 0) return rc;
    if (fstat(fd, &st) == 0 && st.st_size > max) {
        fprintf(stderr, "sandgate-forward: %s is %lld bytes, more than %lld\n", path, (long long)st.st_size, max);
        close(fd);
        return 3;
    }
    rc = copy_fd(fd, 1, max);
    close(fd);
    return rc;
}

static int run(int seconds, const char *id, char **argv) {
    char path[128];
    if (!valid_id(id)) return 2;
    child_pid = fork();
    if (child_pid < 0) return 127;
    if (child_pid == 0) {
        setpgid(0, 0);
        take_terminal();
        execvp(argv[0], argv);
        fprintf(stderr, "sandgate-forward: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(child_pid, child_pid);
    mkdir("/tmp/.sandgate", 0700);
    pid_path(path, sizeof path, id);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "%d\n", (int)child_pid);
        fclose(f);
    }
    signal(SIGALRM, on_alarm);
    if (seconds > 0) alarm((unsigned)seconds);
    int status = 0;
    while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {
    }
    unlink(path);
    if (timed_out) {
        kill_group(child_pid);
        return 124;
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "serve") == 0) return serve(atoi(argv[2]), argv[3]);
    if (argc >= 5 && strcmp(argv[1], "run") == 0) return run(atoi(argv[2]), argv[3], argv + 4);
    if (argc == 3 && strcmp(argv[1], "kill") == 0) return kill_run(argv[2]);
    if (argc == 4 && strcmp(argv[1], "signal") == 0) return signal_run(argv[2], atoi(argv[3]));
    if (argc == 4 && strcmp(argv[1], "write") == 0) return write_file(argv[2], atoll(argv[3]));
    if (argc == 4 && strcmp(argv[1], "read") == 0) return read_file(argv[2], atoll(argv[3]));
    fprintf(stderr, "usage: %s serve PORT SOCKET | run SECONDS ID ARGV... | kill ID | signal ID SIGNUM | write PATH MAX | read PATH MAX\n",
            argv[0]);
    return 2;
}
