/* vfs_fault.c — a SQLite VFS that forwards to the default one and asks
 * cairn_io_fault() (base/iofault.c) before every xOpen, xWrite, xSync and
 * xTruncate, so the I/O fault injection reaches SQLite's own writes (the
 * database, its WAL and shared memory index). An injected ENOSPC is
 * SQLITE_FULL, anything else the matching SQLITE_IOERR_* code: exactly what
 * SQLite returns for a real full or failing disk, so the store's error
 * paths run as they would. Installed only while injection is armed or
 * counting (store_open asks store_vfs_name()). */
#include "store/store_int.h"
#include <errno.h>
#include <pthread.h>
#include <string.h>

#define VFS_NAME "cairn-fault"

typedef struct ff_file {
    sqlite3_file base;          /* our methods */
    sqlite3_file *real;         /* the default VFS's file, right after this struct */
} ff_file;

static sqlite3_vfs ff_vfs;
static sqlite3_vfs *real_vfs;
static sqlite3_io_methods ff_methods;

/* The errno of the last injected failure on this thread, for messages
 * (SQLite's own system errno does not see the shim's). */
static _Thread_local int last_errno;

int store_vfs_take_errno(void)
{
    int e = last_errno;
    last_errno = 0;
    return e;
}

static int full_or(int ioerr)
{
    last_errno = errno;
    return errno == ENOSPC ? SQLITE_FULL : ioerr;
}

static int ff_close(sqlite3_file *f)
{
    ff_file *p = (ff_file *)f;
    return p->real->pMethods ? p->real->pMethods->xClose(p->real) : SQLITE_OK;
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return ((ff_file *)f)->real->pMethods->xRead(((ff_file *)f)->real, b, n, o); }
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    if (cairn_io_fault())
        return full_or(SQLITE_IOERR_WRITE);
    return ((ff_file *)f)->real->pMethods->xWrite(((ff_file *)f)->real, b, n, o);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    if (cairn_io_fault())
        return full_or(SQLITE_IOERR_TRUNCATE);
    return ((ff_file *)f)->real->pMethods->xTruncate(((ff_file *)f)->real, size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
    if (cairn_io_fault())
        return full_or(SQLITE_IOERR_FSYNC);
    return ((ff_file *)f)->real->pMethods->xSync(((ff_file *)f)->real, flags);
}
#define REAL(f) (((ff_file *)(f))->real)
static int ff_size(sqlite3_file *f, sqlite3_int64 *s) { return REAL(f)->pMethods->xFileSize(REAL(f), s); }
static int ff_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int ff_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int ff_check(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int ff_fctl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int ff_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int ff_dev(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int ff_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, pp);
}
static int ff_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
static void ff_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int ff_shmunmap(sqlite3_file *f, int d) { return REAL(f)->pMethods->xShmUnmap(REAL(f), d); }
static int ff_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **pp) { return REAL(f)->pMethods->xFetch(REAL(f), o, n, pp); }
static int ff_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p) { return REAL(f)->pMethods->xUnfetch(REAL(f), o, p); }

static int ff_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
    (void)vfs;
    ff_file *p = (ff_file *)f;
    p->real = (sqlite3_file *)(p + 1);
    memset(p->real, 0, (size_t)real_vfs->szOsFile);
    f->pMethods = NULL;
    if ((flags & (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) && cairn_io_fault()) {
        last_errno = errno;
        return SQLITE_CANTOPEN;
    }
    int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
    if (rc == SQLITE_OK && p->real->pMethods) {
        ff_methods.iVersion = p->real->pMethods->iVersion;
        f->pMethods = &ff_methods;
    }
    return rc;
}

static int ff_delete(sqlite3_vfs *v, const char *n, int sync) { (void)v; return real_vfs->xDelete(real_vfs, n, sync); }
static int ff_access(sqlite3_vfs *v, const char *n, int fl, int *r) { (void)v; return real_vfs->xAccess(real_vfs, n, fl, r); }
static int ff_fullpath(sqlite3_vfs *v, const char *n, int k, char *o) { (void)v; return real_vfs->xFullPathname(real_vfs, n, k, o); }
static void *ff_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return real_vfs->xDlOpen(real_vfs, n); }
static void ff_dlerror(sqlite3_vfs *v, int n, char *m) { (void)v; real_vfs->xDlError(real_vfs, n, m); }
static void (*ff_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return real_vfs->xDlSym(real_vfs, h, s); }
static void ff_dlclose(sqlite3_vfs *v, void *h) { (void)v; real_vfs->xDlClose(real_vfs, h); }
static int ff_random(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xRandomness(real_vfs, n, o); }
static int ff_sleep(sqlite3_vfs *v, int us) { (void)v; return real_vfs->xSleep(real_vfs, us); }
static int ff_time(sqlite3_vfs *v, double *t) { (void)v; return real_vfs->xCurrentTime(real_vfs, t); }
static int ff_lasterr(sqlite3_vfs *v, int n, char *o) { (void)v; return real_vfs->xGetLastError ? real_vfs->xGetLastError(real_vfs, n, o) : 0; }
static int ff_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return real_vfs->xCurrentTimeInt64(real_vfs, t); }

static int registered;

static void ff_register(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    if (!real_vfs)
        return;
    ff_methods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = ff_close, .xRead = ff_read, .xWrite = ff_write, .xTruncate = ff_truncate,
        .xSync = ff_sync, .xFileSize = ff_size, .xLock = ff_lock, .xUnlock = ff_unlock,
        .xCheckReservedLock = ff_check, .xFileControl = ff_fctl, .xSectorSize = ff_sector,
        .xDeviceCharacteristics = ff_dev, .xShmMap = ff_shmmap, .xShmLock = ff_shmlock,
        .xShmBarrier = ff_shmbarrier, .xShmUnmap = ff_shmunmap, .xFetch = ff_fetch, .xUnfetch = ff_unfetch,
    };
    ff_vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(ff_file) + real_vfs->szOsFile, .mxPathname = real_vfs->mxPathname,
        .zName = VFS_NAME, .xOpen = ff_open, .xDelete = ff_delete, .xAccess = ff_access,
        .xFullPathname = ff_fullpath, .xDlOpen = ff_dlopen, .xDlError = ff_dlerror, .xDlSym = ff_dlsym,
        .xDlClose = ff_dlclose, .xRandomness = ff_random, .xSleep = ff_sleep, .xCurrentTime = ff_time,
        .xGetLastError = ff_lasterr, .xCurrentTimeInt64 = ff_time64,
    };
    registered = sqlite3_vfs_register(&ff_vfs, 0) == SQLITE_OK;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;

const char *store_vfs_name(void)
{
    if (!cairn_io_armed())
        return NULL;
    pthread_once(&once, ff_register);
    return registered ? VFS_NAME : NULL;
}
