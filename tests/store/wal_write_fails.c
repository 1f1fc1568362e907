/* An LD_PRELOAD library for tests/store/test_walvfs.py: while the file named by
 * FIXGW_TEST_DISK_FULL exists, every pwrite64 to a file whose name ends in "-wal" fails with
 * ENOSPC (the disk full), as the kernel reports it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t (*next_pwrite64)(int, const void *, size_t, off_t);

static int wal_and_full(int fd) {
    const char *flag = getenv("FIXGW_TEST_DISK_FULL");
    if (flag == NULL || access(flag, F_OK) != 0) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 4) return 0;
    target[n] = 0;
    return strcmp(target + n - 4, "-wal") == 0;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    if (next_pwrite64 == NULL) next_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
    if (wal_and_full(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return next_pwrite64(fd, buf, count, offset);
}
