/* A SQLite VFS that writes each commit's write-ahead-log frames with one write.
 *
 * SQLite appends a commit to the WAL frame by frame, and each frame as two writes: its 24-byte
 * header, then the page (wal.c, walWriteOneFrame). An order's two commits write some 28 frames:
 * 56 pwrite calls, about 1.5 us each on the machines we measured (docs/performance.md). This VFS
 * passes every call to the default VFS ("unix"), except that while a connection holds the WAL's
 * write lock, the frames it appends to its WAL file are gathered, and written as one (in pieces
 * of WRITE_MAX bytes) when:
 *
 *   - the page of a commit frame has been gathered (a frame header whose "database size after
 *     commit" field is not zero marks it: the last frame a commit appends), in that same
 *     xWrite, so that a failed write fails the commit as it would have before, and the commit's
 *     frames are in the file before SQLite makes it visible (it writes the wal-index header
 *     after the commit frame's xWrite has returned);
 *   - the next append is not where the last one ended;
 *   - any other call reaches the WAL file (read, sync, truncate, size, lock, file control).
 *
 * Only appends are gathered: a write below the end of the transaction's appends (SQLite writing
 * a page of this transaction again in place, or rewriting frame headers' checksums:
 * walRewriteChecksums) and the WAL header at offset 0 are written as SQLite wrote them, at once
 * and in order, after what is gathered. Nothing is gathered where SQLite pads a commit to a
 * sector boundary (a database file without powersafe overwrite: wal.c writes the padding after
 * the commit frame). When the write lock is released, anything still gathered belongs to a
 * transaction that did not commit (frames a large transaction spilled before rolling back):
 * it is dropped, never written later over another connection's frames. A write that fails
 * makes every later call of the transaction on its WAL file fail with it, so that it cannot
 * commit -- but for reads of what was committed before it (SQLite's rollback reads pages
 * back from there).
 *
 * The VFS is registered by name, not as the default: gateway.store.db opens the store's SQLite
 * files with it (?vfs=), and every other connection keeps the default.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define VFS_NAME "fixgw-wal"
#define FRAME_HEADER 24
#define WAL_HEADER 32
#define WAL_WRITE_LOCK 0 /* the write lock's slot among the wal-index locks (wal.c) */
#define GATHER_MAX (8 * 1024 * 1024) /* a transaction's appends past this are written at once */
#define WRITE_MAX (64 * 1024)
#define KEEP_MAX (256 * 1024) /* a gathering buffer grown past this is freed as its transaction
                                 ends: a large transaction does not hold its memory for good */
/* The most one write passes to the default VFS: "unix" takes a write's length modulo 128 KiB
 * (os_unix.c, seekAndWriteFd: it never gets more than a page and its header), and reports a
 * write of a multiple of 128 KiB, reduced to nothing, as a full disk. */

typedef struct WalFile WalFile;
struct WalFile {
    sqlite3_file base; /* our methods */
    sqlite3_file *real; /* the default VFS's file, in the bytes just after this struct */
    WalFile *wal; /* of a database file: its WAL file (opened through this VFS), while open */
    WalFile *db; /* of a WAL file: its database file, while open */
    int gathering; /* a WAL file: its connection holds the write lock; appends are gathered */
    int powersafe; /* of a WAL file: its database file has powersafe overwrite (SQLite pads no
                      commit): read when the two are linked, as SQLite reads it then */
    int commit_next; /* the last append was a commit frame's header: its page comes next */
    int failed; /* a write of this transaction failed (its error code): no more are made */
    sqlite3_int64 frontier; /* where the transaction's appends end so far */
    sqlite3_int64 start; /* the lowest offset the transaction wrote: what lies below is
                            committed, and readable after a failure */
    unsigned char *buf;
    sqlite3_int64 buf_off; /* where the gathered bytes go in the file */
    int buf_len;
    int buf_cap;
};

static sqlite3_vfs *g_root; /* the default VFS this one wraps */
static sqlite3_vfs g_vfs;
static int g_registered;
static uint64_t g_writes_in; /* WAL appends SQLite made while gathering */
static uint64_t g_writes_out; /* writes made of them */
static int64_t g_held; /* bytes of gathering buffers allocated, all files */

static void count(uint64_t *counter) { __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }

static void release_buffer(WalFile *f) {
    sqlite3_free(f->buf);
    __atomic_fetch_sub(&g_held, (int64_t)f->buf_cap, __ATOMIC_RELAXED);
    f->buf = NULL;
    f->buf_cap = f->buf_len = 0;
}

static int real_write(WalFile *f, const void *data, int amt, sqlite3_int64 off) {
    int rc = f->real->pMethods->xWrite(f->real, data, amt, off);
    if (rc != SQLITE_OK) f->failed = rc;
    return rc;
}

/* Write what is gathered, WRITE_MAX bytes at a time (a failure is the transaction's). */
static int flush(WalFile *f) {
    if (f->failed) return f->failed;
    int len = f->buf_len;
    for (int done = 0; done < len; done += WRITE_MAX) {
        int n = len - done < WRITE_MAX ? len - done : WRITE_MAX;
        count(&g_writes_out);
        int rc = real_write(f, f->buf + done, n, f->buf_off + done);
        if (rc != SQLITE_OK) return rc;
    }
    f->buf_len = 0;
    return SQLITE_OK;
}

/* The write lock taken (1) or released (0) by the connection of the database file ``db``. */
static void write_lock(WalFile *db, int held) {
    WalFile *w = db->wal;
    if (w == NULL) return;
    w->buf_len = 0; /* (released: what is left was not committed; taken: nothing is left) */
    if (!held && w->buf_cap > KEEP_MAX) release_buffer(w);
    w->commit_next = 0;
    w->failed = 0;
    w->frontier = 0;
    w->start = INT64_MAX;
    w->gathering = held && w->powersafe;
}

static int append(WalFile *f, const void *data, int amt, sqlite3_int64 off) {
    int rc;
    if (f->buf_len > 0 && off != f->buf_off + f->buf_len) {
        rc = flush(f);
        if (rc != SQLITE_OK) return rc;
    }
    if (amt > WRITE_MAX || f->buf_len + amt > GATHER_MAX) {
        rc = flush(f);
        if (rc != SQLITE_OK) return rc;
        count(&g_writes_out);
        return real_write(f, data, amt, off);
    }
    if (f->buf_len + amt > f->buf_cap) {
        int cap = f->buf_cap ? f->buf_cap : 64 * 1024;
        while (cap < f->buf_len + amt) cap *= 2;
        unsigned char *grown = sqlite3_realloc(f->buf, cap);
        if (grown == NULL) {
            rc = flush(f);
            if (rc != SQLITE_OK) return rc;
            count(&g_writes_out);
            return real_write(f, data, amt, off);
        }
        __atomic_fetch_add(&g_held, (int64_t)(cap - f->buf_cap), __ATOMIC_RELAXED);
        f->buf = grown;
        f->buf_cap = cap;
    }
    if (f->buf_len == 0) f->buf_off = off;
    memcpy(f->buf + f->buf_len, data, (size_t)amt);
    f->buf_len += amt;
    return SQLITE_OK;
}

/* --- the file's methods: each passes the call on, a WAL file's gathered bytes written first */

#define REAL(file) (((WalFile *)(file))->real)
#define FLUSHED(file)                                    \
    do {                                                 \
        WalFile *w_ = (WalFile *)(file);                 \
        w_->commit_next = 0;                             \
        if (w_->buf_len > 0 || w_->failed) {             \
            int rc_ = flush(w_);                         \
            if (rc_ != SQLITE_OK) return rc_;            \
        }                                                \
    } while (0)

static int xClose(sqlite3_file *file) {
    WalFile *f = (WalFile *)file;
    /* (a WAL file closes with its write lock released, so nothing gathered is left that was
     * committed: dropped, as the release drops it) */
    if (f->db != NULL) f->db->wal = NULL;
    if (f->wal != NULL) f->wal->db = NULL;
    int rc = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    release_buffer(f);
    return rc;
}

static int xRead(sqlite3_file *file, void *data, int amt, sqlite3_int64 off) {
    WalFile *f = (WalFile *)file;
    if (f->failed && off + amt <= f->start) {
        /* (committed before the transaction that failed: SQLite's rollback reads it back) */
        return f->real->pMethods->xRead(f->real, data, amt, off);
    }
    FLUSHED(file);
    return REAL(file)->pMethods->xRead(REAL(file), data, amt, off);
}

static int xWrite(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off) {
    WalFile *f = (WalFile *)file;
    if (!f->gathering) return f->real->pMethods->xWrite(f->real, data, amt, off);
    if (f->failed) return f->failed;
    int commit = f->commit_next;
    f->commit_next = 0;
    if (off < f->start) f->start = off;
    if (off < f->frontier || off < WAL_HEADER) {
        /* written again in place, or the WAL header: at once, after what is gathered */
        int rc = flush(f);
        if (rc != SQLITE_OK) return rc;
        rc = real_write(f, data, amt, off);
        if (rc == SQLITE_OK && off + amt > f->frontier) f->frontier = off + amt;
        return rc;
    }
    count(&g_writes_in);
    if (amt == FRAME_HEADER) {
        const unsigned char *h = data;
        /* bytes 4..7: the database's size in pages after a commit, 0 in other frames */
        f->commit_next = (h[4] | h[5] | h[6] | h[7]) != 0;
    }
    int rc = append(f, data, amt, off);
    f->frontier = off + amt;
    if (rc != SQLITE_OK || !commit) return rc;
    return flush(f);
}

static int xTruncate(sqlite3_file *file, sqlite3_int64 size) {
    FLUSHED(file);
    return REAL(file)->pMethods->xTruncate(REAL(file), size);
}

static int xSync(sqlite3_file *file, int flags) {
    FLUSHED(file);
    return REAL(file)->pMethods->xSync(REAL(file), flags);
}

static int xFileSize(sqlite3_file *file, sqlite3_int64 *size) {
    FLUSHED(file);
    return REAL(file)->pMethods->xFileSize(REAL(file), size);
}

static int xLock(sqlite3_file *file, int lock) {
    FLUSHED(file);
    return REAL(file)->pMethods->xLock(REAL(file), lock);
}

static int xUnlock(sqlite3_file *file, int lock) {
    FLUSHED(file);
    return REAL(file)->pMethods->xUnlock(REAL(file), lock);
}

static int xCheckReservedLock(sqlite3_file *file, int *out) {
    FLUSHED(file);
    return REAL(file)->pMethods->xCheckReservedLock(REAL(file), out);
}

static int xFileControl(sqlite3_file *file, int op, void *arg) {
    FLUSHED(file);
    return REAL(file)->pMethods->xFileControl(REAL(file), op, arg);
}

static int xSectorSize(sqlite3_file *file) {
    return REAL(file)->pMethods->xSectorSize(REAL(file));
}

static int xDeviceCharacteristics(sqlite3_file *file) {
    return REAL(file)->pMethods->xDeviceCharacteristics(REAL(file));
}

/* (shared memory and memory-mapped pages are the database file's: passed on as they are; the
 * write lock's taking and release are followed) */
static int xShmMap(sqlite3_file *file, int region, int size, int extend, void volatile **out) {
    return REAL(file)->pMethods->xShmMap(REAL(file), region, size, extend, out);
}

static int xShmLock(sqlite3_file *file, int offset, int n, int flags) {
    WalFile *f = (WalFile *)file;
    int rc = f->real->pMethods->xShmLock(f->real, offset, n, flags);
    if (rc == SQLITE_OK && offset <= WAL_WRITE_LOCK && WAL_WRITE_LOCK < offset + n
            && (flags & SQLITE_SHM_EXCLUSIVE)) {
        write_lock(f, (flags & SQLITE_SHM_LOCK) != 0);
    }
    return rc;
}

static void xShmBarrier(sqlite3_file *file) { REAL(file)->pMethods->xShmBarrier(REAL(file)); }

static int xShmUnmap(sqlite3_file *file, int delete_flag) {
    return REAL(file)->pMethods->xShmUnmap(REAL(file), delete_flag);
}

static int xFetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out) {
    return REAL(file)->pMethods->xFetch(REAL(file), off, amt, out);
}

static int xUnfetch(sqlite3_file *file, sqlite3_int64 off, void *page) {
    return REAL(file)->pMethods->xUnfetch(REAL(file), off, page);
}

static const sqlite3_io_methods g_methods = {
    3,
    xClose, xRead, xWrite, xTruncate, xSync, xFileSize, xLock, xUnlock, xCheckReservedLock,
    xFileControl, xSectorSize, xDeviceCharacteristics,
    xShmMap, xShmLock, xShmBarrier, xShmUnmap,
    xFetch, xUnfetch,
};

/* --- the VFS: files opened through the default one, every other call passed to it ---------- */

static int vOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                 int *out_flags) {
    (void)vfs;
    WalFile *f = (WalFile *)file;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(f + 1);
    int rc = g_root->xOpen(g_root, name, f->real, flags, out_flags);
    if (rc != SQLITE_OK || f->real->pMethods == NULL) {
        f->base.pMethods = NULL; /* (SQLite calls no method of a file that failed to open) */
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    if (f->real->pMethods->iVersion < 3) {
        /* (the "unix" VFS's files are version 3; ours must not promise what it lacks) */
        f->real->pMethods->xClose(f->real);
        f->base.pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    f->base.pMethods = &g_methods;
    if ((flags & SQLITE_OPEN_WAL) != 0 && name != NULL) {
        /* its database file: when that was opened through this VFS, the two are linked, and
         * the appends of a transaction are gathered (a WAL file of a database opened otherwise
         * passes every write on) */
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db != NULL && db->pMethods == &g_methods && ((WalFile *)db)->wal == NULL) {
            f->db = (WalFile *)db;
            f->db->wal = f;
            sqlite3_file *real = f->db->real;
            f->powersafe = (real->pMethods->xDeviceCharacteristics(real)
                            & SQLITE_IOCAP_POWERSAFE_OVERWRITE) != 0;
        }
    }
    return SQLITE_OK;
}

static int vDelete(sqlite3_vfs *vfs, const char *name, int sync_dir) {
    (void)vfs;
    return g_root->xDelete(g_root, name, sync_dir);
}

static int vAccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
    (void)vfs;
    return g_root->xAccess(g_root, name, flags, out);
}

static int vFullPathname(sqlite3_vfs *vfs, const char *name, int n, char *out) {
    (void)vfs;
    return g_root->xFullPathname(g_root, name, n, out);
}

static void *vDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return g_root->xDlOpen(g_root, name);
}

static void vDlError(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    g_root->xDlError(g_root, n, out);
}

static void (*vDlSym(sqlite3_vfs *vfs, void *handle, const char *symbol))(void) {
    (void)vfs;
    return g_root->xDlSym(g_root, handle, symbol);
}

static void vDlClose(sqlite3_vfs *vfs, void *handle) {
    (void)vfs;
    g_root->xDlClose(g_root, handle);
}

static int vRandomness(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    return g_root->xRandomness(g_root, n, out);
}

static int vSleep(sqlite3_vfs *vfs, int us) {
    (void)vfs;
    return g_root->xSleep(g_root, us);
}

static int vCurrentTime(sqlite3_vfs *vfs, double *out) {
    (void)vfs;
    return g_root->xCurrentTime(g_root, out);
}

static int vGetLastError(sqlite3_vfs *vfs, int n, char *out) {
    (void)vfs;
    return g_root->xGetLastError ? g_root->xGetLastError(g_root, n, out) : 0;
}

static int vCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
    (void)vfs;
    return g_root->xCurrentTimeInt64(g_root, out);
}

/* --- the Python module ---------------------------------------------------------------------- */

static PyObject *py_register(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    if (!g_registered) {
        sqlite3_vfs *root = sqlite3_vfs_find(NULL);
        if (root == NULL || root->iVersion < 2 || root->xCurrentTimeInt64 == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "SQLite's default VFS cannot be wrapped");
            return NULL;
        }
        g_root = root;
        memset(&g_vfs, 0, sizeof(g_vfs));
        g_vfs.iVersion = 2;
        g_vfs.szOsFile = (int)sizeof(WalFile) + root->szOsFile;
        g_vfs.mxPathname = root->mxPathname;
        g_vfs.zName = VFS_NAME;
        g_vfs.xOpen = vOpen;
        g_vfs.xDelete = vDelete;
        g_vfs.xAccess = vAccess;
        g_vfs.xFullPathname = vFullPathname;
        g_vfs.xDlOpen = vDlOpen;
        g_vfs.xDlError = vDlError;
        g_vfs.xDlSym = vDlSym;
        g_vfs.xDlClose = vDlClose;
        g_vfs.xRandomness = vRandomness;
        g_vfs.xSleep = vSleep;
        g_vfs.xCurrentTime = vCurrentTime;
        g_vfs.xGetLastError = vGetLastError;
        g_vfs.xCurrentTimeInt64 = vCurrentTimeInt64;
        int rc = sqlite3_vfs_register(&g_vfs, 0);
        if (rc != SQLITE_OK) {
            PyErr_Format(PyExc_RuntimeError, "sqlite3_vfs_register failed (%d)", rc);
            return NULL;
        }
        g_registered = 1;
    }
    return PyUnicode_FromString(VFS_NAME);
}

static PyObject *py_counts(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return Py_BuildValue("(KK)", (unsigned long long)__atomic_load_n(&g_writes_in, __ATOMIC_RELAXED),
                         (unsigned long long)__atomic_load_n(&g_writes_out, __ATOMIC_RELAXED));
}

static PyObject *py_held(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLongLong((long long)__atomic_load_n(&g_held, __ATOMIC_RELAXED));
}

static PyMethodDef methods[] = {
    {"register", py_register, METH_NOARGS,
     "Register the VFS (once; not as the default) and return its name."},
    {"counts", py_counts, METH_NOARGS,
     "(WAL writes SQLite made, writes made of them) in this process so far."},
    {"held", py_held, METH_NOARGS,
     "Bytes of gathering buffers held now, all connections of this process."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walvfs",
    "A SQLite VFS writing each commit's WAL frames with one write (see the C source).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__walvfs(void) { return PyModule_Create(&module); }
