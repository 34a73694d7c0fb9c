/* An LD_PRELOAD shim that makes one call (or every call from one on) of a
 * kind fail, in the manner of SQLite's own fault-injection tests: the test
 * counts the calls of a clean session, then fails the Nth one for each N.
 *
 *   EPOCHD_FAULT=KIND:N:ERRNO[:MODE[:ROLE]]
 *     KIND   write (write, pwrite, pwrite64, writev), sync (fsync, fdatasync) -
 *            of regular files only: a disk fails, a pipe does not - or alloc
 *            (malloc, calloc, realloc)
 *     N      the first call to fail, counting from 1 in each process
 *     ERRNO  ENOSPC, EIO or ENOMEM
 *     MODE   once (default: only call N) or from (N and every later call: a full disk)
 *     ROLE   serve (default), worker or any: the epochd command of the processes
 *            that fail; others only count
 *   EPOCHD_FAULT_COUNT=FILE   at exit, appends "ROLE KIND COUNT" per kind
 *   EPOCHD_FAULT_FIRED=FILE   with MODE once: the fault fires in one process of the
 *                             session only (the first to create FILE); without it,
 *                             in each process that reaches call N
 *
 * Test-only: it is built as a shared module in tests/service and never
 * linked into epochd. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { K_WRITE, K_SYNC, K_ALLOC, K_COUNT };
static const char *const kind_names[K_COUNT] = {"write", "sync", "alloc"};

static long counts[K_COUNT];
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int fault_kind = -1, fault_errno, fault_from;
static long fault_n;
static int active;        /* this process is the one to fail */
static int ready;         /* main has begun: what static constructors (of libraries too) allocate is not counted */
static char role[32] = "?";

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);

/* The epochd command of this process ("serve", "worker", ...), from /proc. */
static void read_role(void)
{
    char buf[4096];
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    const char *a1 = buf + strlen(buf) + 1; /* argv[1] */
    if (a1 < buf + n)
        snprintf(role, sizeof role, "%s", a1);
}

static int parse_errno(const char *s)
{
    if (!strcmp(s, "ENOSPC"))
        return ENOSPC;
    if (!strcmp(s, "EIO"))
        return EIO;
    if (!strcmp(s, "ENOMEM"))
        return ENOMEM;
    return EIO;
}

#define NEXT(name) ((__typeof__(real_##name))dlsym(RTLD_NEXT, #name))

/* Before `ready`: what dlsym allocates is neither counted nor failed. Also
 * called by a wrapper used before the constructor ran. */
static void resolve(void)
{
    real_write = NEXT(write);
    real_pwrite = NEXT(pwrite);
    real_pwrite64 = NEXT(pwrite64);
    real_writev = NEXT(writev);
    real_fsync = NEXT(fsync);
    real_fdatasync = NEXT(fdatasync);
}

__attribute__((constructor)) static void init(void)
{
    resolve();
    read_role();
    const char *spec = getenv("EPOCHD_FAULT");
    if (spec && *spec) {
        char kind[16] = "", err[16] = "", mode[16] = "once", who[32] = "serve";
        long n = 0;
        if (sscanf(spec, "%15[^:]:%ld:%15[^:]:%15[^:]:%31s", kind, &n, err, mode, who) >= 3) {
            for (int k = 0; k < K_COUNT; k++)
                if (!strcmp(kind, kind_names[k]))
                    fault_kind = k;
            fault_n = n;
            fault_errno = parse_errno(err);
            fault_from = !strcmp(mode, "from");
            active = !strcmp(who, "any") || !strcmp(who, role);
        }
    }
}

/* Arms the shim when main begins, after every static constructor. */
typedef int (*main_fn)(int, char **, char **);
static main_fn real_main;

static int main_hook(int argc, char **argv, char **envp)
{
    ready = 1;
    return real_main(argc, argv, envp);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
                      void (*rtld_fini)(void), void *stack_end)
{
    int (*real)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *) =
        (__typeof__(real))dlsym(RTLD_NEXT, "__libc_start_main");
    real_main = main;
    return real(main_hook, argc, argv, init, fini, rtld_fini, stack_end);
}

__attribute__((destructor)) static void fini(void)
{
    const char *out = getenv("EPOCHD_FAULT_COUNT");
    if (!out || !*out)
        return;
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    char line[128];
    for (int k = 0; k < K_COUNT; k++) {
        int len = snprintf(line, sizeof line, "%s %s %ld\n", role, kind_names[k], counts[k]);
        long w = syscall(SYS_write, fd, line, (size_t)len); /* not through the shim */
        (void)w;
    }
    close(fd);
}

static int regular(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Counts the call; true when it is to fail (errno is then set). */
static int fails(int kind)
{
    if (!ready) {
        if (kind != K_ALLOC && !real_write)
            resolve();
        return 0;
    }
    long n = ++counts[kind];
    if (!active || kind != fault_kind || n < fault_n || (!fault_from && n != fault_n))
        return 0;
    const char *fired = fault_from ? NULL : getenv("EPOCHD_FAULT_FIRED");
    if (fired && *fired) {
        int fd = open(fired, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
            return 0; /* another process of the session had it */
        close(fd);
    }
    errno = fault_errno;
    return 1;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (regular(fd) && fails(K_WRITE))
        return -1;
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    if (regular(fd) && fails(K_WRITE))
        return -1;
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
    if (regular(fd) && fails(K_WRITE))
        return -1;
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    if (regular(fd) && fails(K_WRITE))
        return -1;
    return real_writev(fd, iov, cnt);
}

int fsync(int fd)
{
    if (regular(fd) && fails(K_SYNC))
        return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    if (regular(fd) && fails(K_SYNC))
        return -1;
    return real_fdatasync(fd);
}

#ifndef FAULTINJ_NO_ALLOC /* built so under ASan, which must own malloc and free both */
void *malloc(size_t n)
{
    if (fails(K_ALLOC))
        return NULL;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (fails(K_ALLOC))
        return NULL;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    if (fails(K_ALLOC))
        return NULL;
    return __libc_realloc(p, n);
}
#endif
