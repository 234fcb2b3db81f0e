/*
 * sandgate-forward: the only process Sandgate starts inside a sandbox.
 *
 *   sandgate-forward serve PORT SOCKET   accept TCP on 127.0.0.1:PORT and splice each
 *                                        connection to the unix SOCKET (the session's
 *                                        Envoy listener). Runs as PID 1: ignores SIGCHLD
 *                                        so exited children are reaped by the kernel.
 *   sandgate-forward run SECONDS ID ARGV...
 *                                        run ARGV in its own process group; after SECONDS
 *                                        (0 = none) kill the group and exit 124. The group id
 *                                        is kept in /tmp/.sandgate/ID so that `kill ID` can end it.
 *   sandgate-forward kill ID             kill the process group of the run called ID.
 *   sandgate-forward write PATH MAX      copy stdin to PATH (mode 0644), at most MAX bytes.
 *   sandgate-forward read PATH MAX       copy PATH to stdout; fail if it is larger than MAX.
 *                                        Both refuse (exit 4) a path that is not a regular file
 *                                        (FIFO, socket, device, directory, symbolic link), and
 *                                        never open one: opening a FIFO blocks.
 *
 * Static, no libc features beyond POSIX sockets, so it works in any image.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

enum { NOT_REGULAR = 4 }; /* exit code of read and write for a path that is not a regular file */

static int connect_unix(const char *path) {
    struct sockaddr_un addr;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Copy what is readable from `from` to `to`; returns 0 on EOF, -1 on error. */
static int pump(int from, int to) {
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0) return n == 0 ? 0 : -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, n - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        off += w;
    }
    return 1;
}

static void splice_pair(int client, const char *sock_path) {
    int upstream = connect_unix(sock_path);
    if (upstream < 0) _exit(1);
    struct pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    int open_dirs = 2;
    while (open_dirs > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            int peer = i == 0 ? upstream : client;
            int r = pump(fds[i].fd, peer);
            if (r < 0) _exit(0);
            if (r == 0) { /* half-close: pass the EOF on, keep reading the other way */
                shutdown(peer, SHUT_WR);
                fds[i].fd = -1;
                open_dirs--;
            }
        }
    }
    _exit(0);
}

static int serve(int port, const char *sock_path) {
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 128) < 0) {
        perror("sandgate-forward: listen");
        return 1;
    }
    for (;;) {
        int client = accept(lfd, NULL, NULL);
        if (client < 0) continue;
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            splice_pair(client, sock_path);
        }
        close(client);
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
    if (argc == 4 && strcmp(argv[1], "write") == 0) return write_file(argv[2], atoll(argv[3]));
    if (argc == 4 && strcmp(argv[1], "read") == 0) return read_file(argv[2], atoll(argv[3]));
    fprintf(stderr, "usage: %s serve PORT SOCKET | run SECONDS ID ARGV... | kill ID | write PATH MAX | read PATH MAX\n",
            argv[0]);
    return 2;
}
