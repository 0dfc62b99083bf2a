#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Python module `kmalloc` (python/kmallocmodule.c) against a real kmallocd.

Usage: test_python_share.py KMALLOCD api|share   (KMALLOC_TEST_BACKING picks
shmem or hugetlb; the module is found through PYTHONPATH).

api: one process: constants, handle text, allocations and the buffer
protocol, use after free, free() refused while views are alive, close(),
threads, a forked child refused its parent's Client, and the errors
(OSError with the library's errno: malformed, unknown, forged, revoked,
used-up, expired and other-uid handles, sizes the pool refuses).

share: two Python processes, A and B, the handles passed through a pipe, for
a slab kmalloc, a large kmalloc and a vmalloc (and, as root, a GFP_SHARED
kmalloc and vmalloc with B running as uid 65534): A fills a numpy array and
exports; B is refused a forged handle, imports, checks, writes back; A sees
B's writes; read-only imports (asked for, or forced by the handle) give
read-only memoryviews and numpy arrays, and a write through their address
faults; a revoked import becomes inaccessible; A frees and exits, B still
reads; when both are gone the pool is back at its starting figures. Needs
numpy (exit 77 without).

Exits 0 on success, 1 on failure, 77 when it cannot run here."""
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NOBODY = 65534
POOL = 32 << 20


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def raises(exc, fn, *args, **kwargs):
    """fn(*args, **kwargs) must raise exc; returns the exception."""
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    except Exception as e:  # noqa: BLE001 - reported as a failure
        fail("%s%r raised %r, wanted %s" % (getattr(fn, "__name__", fn), args, e, exc.__name__))
    fail("%s%r raised nothing, wanted %s" % (getattr(fn, "__name__", fn), args, exc.__name__))


def raises_errno(err, fn, *args, **kwargs):
    e = raises(OSError, fn, *args, **kwargs)
    check(e.errno == err, "%s%r: errno %s (%s), wanted %s" %
          (getattr(fn, "__name__", fn), args, e.errno, e, errno.errorcode[err]))
    check(e.strerror, "OSError without a message")
    return e


def have_numpy():
    try:
        import numpy  # noqa: F401
        return True
    except ImportError:
        return False


def import_kmalloc():
    try:
        import kmalloc
    except ImportError as e:
        fail("cannot import the kmalloc module (PYTHONPATH=%s): %s" %
             (os.environ.get("PYTHONPATH"), e))
    return kmalloc


def mapping_perms(addr):
    """The permissions of the mapping holding addr, from /proc/self/maps."""
    with open("/proc/self/maps") as f:
        for line in f:
            rng, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in rng.split("-"))
            if lo <= addr < hi:
                return perms
    return None


def write_faults(addr):
    """Whether writing one byte at addr kills a forked child with SIGSEGV or
    SIGBUS (the byte is written back unchanged where it does not fault)."""
    import ctypes
    pid = os.fork()
    if pid == 0:
        try:
            b = ctypes.c_ubyte.from_address(addr)
            b.value = b.value
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) in (signal.SIGSEGV, signal.SIGBUS)


# ---- the daemon -------------------------------------------------------------

class Daemon:
    def __init__(self, kmallocd, backing):
        self.tmp = tempfile.mkdtemp(prefix="kmpyshare.")
        self.path = os.path.join(self.tmp, "sock")
        args = [kmallocd, "--socket", self.path, "--pool-size", "%dM" % (POOL >> 20)]
        if os.geteuid() != 0:
            # Every import is charged to its holder's uid as well, and an
            # unprivileged uid may hold half the pool by default: the
            # vmalloc case (A's area and B's three imports, one uid) needs more.
            args += ["--limit", "uid:%d:max_bytes=100%%" % os.geteuid()]
        if backing == "hugetlb":
            free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
            if free < 16:
                print("SKIP: the hugetlb run needs 16 free hugepages, has %d" % free)
                sys.exit(77)
            args.append("--require-hugepages")
        else:
            args += ["--backing", "shmem"]
        self.log = open(os.path.join(self.tmp, "log"), "w+")
        # In a sanitizer build (tests/meson.build) this interpreter runs with
        # the sanitizer runtimes preloaded and relaxed options; the daemon
        # is linked with them and gets the strict ones.
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        if "KMALLOC_TEST_DAEMON_ASAN_OPTIONS" in env:
            env["ASAN_OPTIONS"] = env.pop("KMALLOC_TEST_DAEMON_ASAN_OPTIONS")
        self.proc = subprocess.Popen(args, stderr=self.log, stdout=self.log, env=env)
        for _ in range(500):
            if os.path.exists(self.path):
                try:
                    socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).connect(self.path)
                    break
                except OSError:
                    pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        else:
            self.stop()
            fail("kmallocd did not listen on %s" % self.path)
        if self.proc.poll() is not None:
            self.dump()
            fail("kmallocd exited with %d" % self.proc.returncode)
        if os.geteuid() == 0:
            # nobody must reach the socket (connect() needs write permission)
            os.chmod(self.tmp, 0o755)
            os.chmod(self.path, 0o777)

    def dump(self):
        self.log.seek(0)
        print("---- kmallocd log ----\n" + self.log.read() + "---- end of log ----")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        if rc != 0:
            self.dump()
            fail("kmallocd exited with %d" % rc)
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- api: one process -------------------------------------------------------

def test_constants(km):
    check(km.GFP_KERNEL == 0xCC0 and km.GFP_ZERO == 0x100, "GFP values are the kernel's")
    check(km.GFP_ATOMIC == 0x820, "GFP_ATOMIC")
    check(km.GFP_SHARED == 0x10000000 and km.IMPORT_RDONLY == 1, "GFP_SHARED/IMPORT_RDONLY")
    check(km.HANDLE_STRLEN == 64, "HANDLE_STRLEN")
    check(getattr(km, "__GFP_ZERO") == km.GFP_ZERO and getattr(km, "__GFP_HIGH") == 0x20 and
          km.GFP_ATOMIC == getattr(km, "__GFP_HIGH") | getattr(km, "__GFP_KSWAPD_RECLAIM"),
          "the kernel's __GFP_ bits")
    check(km.PAGE_SIZE == 4096 and km.KMALLOC_MAX_SIZE == 4 << 20 and
          km.KMALLOC_MAX_CACHE_SIZE == 8192, "geometry constants")
    for obj in (km, km.Client, km.Buffer, km.Client.kmalloc, km.Buffer.export,
                km.Buffer.numpy, km.Client.import_handle):
        check(obj.__doc__ and len(obj.__doc__) > 20, "%r has no docstring" % obj)


def test_handle_text(km):
    raw = bytes(range(32))
    text = km.format_handle(raw)
    check(text == raw.hex() and len(text) == 64, "format_handle: %r" % text)
    check(km.parse_handle(text) == raw, "parse_handle(format_handle(x)) != x")
    check(km.parse_handle("  " + text.upper() + "\n") == raw, "upper case and white space")
    check(km.parse_handle((text + "\n").encode()) == raw, "text given as bytes")
    for bad in ["", "xyz", text[:63], text + "0", "g" + text[1:], text[:10] + " " + text[11:],
                text[:32] + "\0" + text[33:], b"\0" * 31, b"\0" * 33]:
        raises(ValueError, km.parse_handle, bad)
    for bad in [None, 42, 4.2]:
        raises(TypeError, km.parse_handle, bad)


def test_connect_errors(km, d):
    e = raises_errno(errno.ENOENT, km.Client, os.path.join(d.tmp, "nobody-listens"))
    check(isinstance(e, FileNotFoundError), "ENOENT is not FileNotFoundError")
    check("nobody-listens" in str(e), "the message does not name the socket: %s" % e)


def test_buffers(km, c, numpy_ok):
    b = c.kmalloc(100)
    check(len(b) == 100 and b.size == 100 and b.kind == "kmalloc", "kmalloc(100): %r" % b)
    check(not b.readonly and not b.freed and b.client is c, "kmalloc(100) attributes")
    m = memoryview(b)
    check(not m.readonly and m.nbytes == 100 and m.format == "B", "memoryview of a kmalloc")
    m[:5] = b"hello"
    check(bytes(b)[:5] == b"hello", "bytes() does not see the memoryview's write")
    m.release()
    b.free()

    z = c.kzalloc(8000)
    check(bytes(z) == bytes(8000), "kzalloc not cleared")
    z.free()

    v = c.vmalloc(3 << 20)
    check(v.address % 4096 == 0 and v.kind == "vmalloc", "vmalloc alignment")
    with memoryview(v) as m:
        m[0] = 1
        m[-1] = 2
        check(m[0] == 1 and m[(3 << 20) - 1] == 2, "vmalloc ends")
    v.free()

    with c.kvmalloc(1 << 20) as kv:
        check(len(kv) == 1 << 20, "kvmalloc size")
        kept = kv
    check(kept.freed, "a `with` block did not free the Buffer")

    check(len(c.kmalloc(0)) == 0, "kmalloc(0)")

    if numpy_ok:
        import numpy
        with c.kzalloc(4096) as b:
            a = b.numpy("float64")
            check(a.shape == (512,) and a.flags.writeable and not a.any(), "numpy() of kzalloc")
            a[:] = numpy.arange(512)
            check(memoryview(b).cast("d")[511] == 511.0, "numpy writes are not the buffer's")
            g = b.numpy("uint32", shape=(4, 8))
            check(g.shape == (4, 8) and g[0, 2] == 0 and g[0, 3] == 0x3FF00000,
                  "numpy(shape=)")
            check(b.numpy().dtype == numpy.uint8 and len(b.numpy()) == 4096, "numpy() default")
            raises(ValueError, b.numpy, "uint64", shape=513)
            raises(BufferError, b.free)
            del a, g
    # numpy missing: a clear ImportError
    saved = sys.modules.get("numpy")
    sys.modules["numpy"] = None
    try:
        with c.kmalloc(64) as b:
            e = raises(ImportError, b.numpy)
            check("numpy" in str(e) and e.name == "numpy", "numpy missing: %s" % e)
    finally:
        if saved is None:
            del sys.modules["numpy"]
        else:
            sys.modules["numpy"] = saved


def test_use_after_free(km, c):
    b = c.kmalloc(256)
    m = memoryview(b)
    e = raises(BufferError, b.free)
    check("view" in str(e), "BufferError message: %s" % e)
    m2 = m[10:20]
    m.release()
    raises(BufferError, b.free)   # the slice is a view too
    m2.release()
    b.free()
    b.free()    # a second free does nothing
    check(b.freed, "freed")
    for fn in (len, memoryview, bytes, lambda x: x.size, lambda x: x.address,
               lambda x: x.readonly, lambda x: x.export(), lambda x: x.numpy(),
               lambda x: x.__enter__()):
        raises(ValueError, fn, b)
    check("freed" in repr(b), "repr of a freed Buffer")


def test_alloc_errors(km, c):
    e = raises_errno(errno.ENOMEM, c.kmalloc, 5 << 20)
    check("kmalloc" in str(e) and "5242880 bytes" in str(e), "ENOMEM message: %s" % e)
    raises_errno(errno.EINVAL, c.vmalloc, 0)
    raises_errno(errno.ENOMEM, c.vmalloc, 2 * POOL)
    raises(ValueError, c.kmalloc, -1)
    raises(TypeError, c.kmalloc, "64")
    raises(TypeError, c.kmalloc, 64, gfp="x")
    raises(OverflowError, c.kmalloc, 64, gfp=1 << 40)
    with c.kmalloc(0) as z:
        raises_errno(errno.EINVAL, z.export)


def test_handle_errors(km, c, d):
    # a well-formed handle nobody exported
    e = raises_errno(errno.ENOENT, c.import_handle, "00" * 32)
    check(isinstance(e, FileNotFoundError) and "handle" in str(e), "unknown handle: %s" % e)
    raises_errno(errno.ENOENT, c.revoke, "00" * 32)
    raises(ValueError, c.import_handle, "not a handle")
    raises(ValueError, c.import_handle, b"\x01" * 31)
    raises(TypeError, c.import_handle, 12)

    with c.vmalloc(1 << 20) as b:
        memoryview(b)[:4] = b"kmpy"
        # an import in the same process sees the same bytes
        h = b.export()
        check(len(h) == 64 and km.parse_handle(h), "export() gives 64 hex digits: %r" % h)
        # forged: the real handle with one bit of its random part, or of its
        # name, changed
        for pos in (63, 0):
            forged = h[:pos] + "%x" % (int(h[pos], 16) ^ 1) + h[pos + 1:]
            e = raises(OSError, c.import_handle, forged)
            check(e.errno in (errno.ENOENT, errno.EACCES), "forged handle: %r" % e)
        with c.import_handle(h) as i:
            check(len(i) >= 1 << 20 and bytes(memoryview(i)[:4]) == b"kmpy", "own import")
            check(i.kind == "import" and not i.readonly, "own import attributes")
            with c.import_handle(km.parse_handle(h), readonly=True) as ro:
                check(ro.readonly and memoryview(ro).readonly, "readonly=True import")
                raises(TypeError, memoryview(ro).__setitem__, 0, 1)
                check(write_faults(ro.address), "a write to a read-only import did not fault")
            # revoked: no more imports (EACCES); the revoke ends the live import
            n = c.revoke(h)
            check(n == 1, "revoke ended %d imports, wanted 1" % n)
        e = raises_errno(errno.EACCES, c.import_handle, h)
        check(isinstance(e, PermissionError) and "revoked" in str(e), "revoked: %s" % e)

        # one use
        h1 = b.export(once=True)
        c.import_handle(h1).free()
        raises_errno(errno.EACCES, c.import_handle, h1)
        # expired
        ht = b.export(lifetime_ms=50)
        time.sleep(0.2)
        raises_errno(errno.EACCES, c.import_handle, ht)
        # meant for another uid
        hu = b.export(uid=os.getuid() + 4242)
        raises_errno(errno.EACCES, c.import_handle, hu)
        # a handle exported read-only gives a read-only Buffer without asking
        hr = b.export(readonly=True)
        with c.import_handle(hr) as i:
            check(i.readonly and memoryview(i).readonly, "read-only handle, writable Buffer")
            # and a re-export of a read-only import stays read-only
            with c.import_handle(i.export()) as j:
                check(j.readonly, "re-export of a read-only import is writable")
        raises(ValueError, b.export, lifetime_ms=-1)
        raises(OverflowError, b.export, uid=1 << 40)
    # the memory is gone once its last holder freed it: the handle names nothing
    raises_errno(errno.ENOENT, c.import_handle, hr)


def test_close(km, c_path):
    c = km.Client(c_path)
    check(c.socket == c_path and not c.closed, "Client attributes")
    b = c.kmalloc(64)
    m = memoryview(b)
    raises(BufferError, c.close)
    check(not c.closed and not b.freed, "a refused close() changed something")
    m.release()
    c.close()
    check(c.closed and b.freed, "close() did not end its Buffers")
    raises(ValueError, len, b)
    for fn in (c.kmalloc, c.vmalloc, c.kvmalloc, c.kzalloc):
        raises(ValueError, fn, 64)
    raises(ValueError, c.meminfo)
    raises(ValueError, c.import_handle, "00" * 32)
    c.close()
    with km.Client(c_path) as c2:
        keep = c2.kmalloc(64)
    check(c2.closed and keep.freed, "with Client(): not closed")


def test_threads(km, c):
    """Allocations from several threads at once (the GIL is released)."""
    import threading
    errors = []

    def body(k):
        try:
            for i in range(200):
                with c.kmalloc(64 + k * 8 + i % 64) as b:
                    memoryview(b)[0] = k
                    if memoryview(b)[0] != k:
                        errors.append("thread %d saw another's byte" % k)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=body, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, "threads: %s" % errors[:3])


def test_fork(km, c):
    """A forked child may not use its parent's Client or Buffers (it would
    talk on the parent's connection), and dropping them there frees nothing
    of the parent's (a large kmalloc's free would reach the daemon)."""
    box = {"b": c.kmalloc(1 << 20)}
    memoryview(box["b"])[:4] = b"fork"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            b = box["b"]
            for fn in (lambda: c.kmalloc(64), lambda: memoryview(b), b.free, c.close,
                       lambda: len(b), b.export):
                try:
                    fn()
                    code = 1
                except RuntimeError as e:
                    if "fork" not in str(e):
                        code = 2
            del b, fn
            box.clear()         # the child's last reference: dealloc runs here
        except BaseException:  # noqa: BLE001
            code = 3
        finally:
            os.write(w, bytes([code]))
            os._exit(0)
    os.close(w)
    code = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    check(code == b"\0", "forked child: code %r (1: a call worked, 2: wrong message)" % code)
    b = box.pop("b")
    check(bytes(memoryview(b)[:4]) == b"fork", "the parent's Buffer after the child")
    with c.import_handle(b.export()) as i:  # the daemon still has it
        check(bytes(memoryview(i)[:4]) == b"fork", "an import after the child")
    with c.kmalloc(64) as other:
        check(len(other) == 64, "the parent's Client after the child")
    b.free()


def run_api(km, d):
    numpy_ok = have_numpy()
    test_constants(km)
    test_handle_text(km)
    test_connect_errors(km, d)
    with km.Client(d.path) as c:
        base = c.meminfo()
        check(base["total"] == POOL and base["frame_size"] == 2 << 20, "meminfo: %s" % base)
        test_buffers(km, c, numpy_ok)
        test_use_after_free(km, c)
        test_alloc_errors(km, c)
        test_handle_errors(km, c, d)
        test_threads(km, c)
        test_fork(km, c)
    test_close(km, d.path)
    print("api: all checks passed%s" % ("" if numpy_ok else " (numpy parts skipped)"))


# ---- share: two processes ---------------------------------------------------

def wait_figures(km, path, base):
    """Polls (5 s at most: giving back is asynchronous) until the pool's free
    and vmalloc figures are back at base."""
    keys = ("free", "vmalloc_used", "quarantined")
    with km.Client(path) as c:
        for _ in range(500):
            now = c.meminfo()
            if all(now[k] == base[k] for k in keys):
                return
            time.sleep(0.01)
    fail("the pool did not come back: %s, at start %s" %
         ({k: now[k] for k in keys}, {k: base[k] for k in keys}))


def pattern(np, n):
    return (np.arange(n, dtype=np.uint32) * 2654435761) & 0xFFFFFFFF


def role_a(km, np, path, kind, size, shared, cross, r_in, w_out):
    """Allocates, fills, exports; sees B's writes; revokes; frees and exits."""
    gfp = km.GFP_KERNEL | (km.GFP_SHARED if shared else 0)
    c = km.Client(path)
    buf = c.vmalloc(size, gfp) if kind == "vmalloc" else c.kmalloc(size, gfp)
    a = buf.numpy("uint32")
    n = len(a)
    a[:] = pattern(np, n)
    handles = [buf.export(uid=NOBODY if cross else None),   # read-write
               buf.export(readonly=True),                   # read-only for every import
               buf.export(once=True)]                       # to be revoked
    if cross:
        plain = c.kmalloc(4096)                 # not GFP_SHARED: not for another uid
        handles.append(plain.export())
    w_out.write(" ".join(handles) + "\n")
    w_out.flush()

    word, held = r_in.readline().split()
    check(word == "written", "A: B did not write")
    want = pattern(np, n) * 3 + 7
    check((a == want).all(), "A does not see B's writes (%s)" % kind)
    ended = c.revoke(handles[2])
    check(ended == int(held), "A: revoke ended %d imports, wanted %s" % (ended, held))
    w_out.write("revoked\n")
    w_out.flush()
    check(r_in.readline().strip() == "done", "A: B did not finish")
    # the exporter's own reference stays after the revoke
    check((a == want).all(), "A's memory changed by the revoke")
    del a
    buf.free()
    c.close()


def role_b(km, np, path, kind, size, shared, cross, r_in, w_out):
    """Imports, checks, writes back; read-only imports; revoke; reads on
    after A has gone; frees."""
    if cross:
        os.setgid(NOBODY)
        os.setuid(NOBODY)
        check(os.getuid() == NOBODY, "B is not nobody")
    c = km.Client(path)
    line = r_in.readline().split()
    check(len(line) == (4 if cross else 3), "B: handles %r" % line)
    h, hro, hrev = line[:3]

    forged = h[:-1] + "%x" % (int(h[-1], 16) ^ 1)
    e = raises(OSError, c.import_handle, forged)
    check(e.errno in (errno.ENOENT, errno.EACCES), "B: forged handle: %r" % e)
    buf = c.import_handle(h)
    check(not buf.readonly and len(buf) >= size, "B: import of %d bytes, len %d" % (size, len(buf)))
    a = buf.numpy("uint32", shape=size // 4)
    n = len(a)
    check((a == pattern(np, n)).all(), "B does not see A's values (%s)" % kind)
    a[:] = a * 3 + 7

    # read-only: asked for, and forced by the handle
    for ro in (c.import_handle(h, readonly=True), c.import_handle(hro)):
        check(ro.readonly and memoryview(ro).readonly, "B: a read-only import is writable")
        r = ro.numpy("uint32", shape=size // 4)
        check(not r.flags.writeable, "B: numpy array over a read-only import is writeable")
        raises(ValueError, r.__setitem__, 0, 1)
        check((r == a).all(), "B: the read-only import shows other values")
        check(write_faults(ro.address), "B: a write to a read-only import did not fault")
        del r
        ro.free()
    if cross:
        e = raises_errno(errno.EACCES, c.import_handle, line[3])
        check("GFP_SHARED" in str(e), "B: cross-domain refusal message: %s" % e)
        # a handle for uid NOBODY: root (A's uid) would be refused, nobody is not
    # An import with a mapping of its own (vmalloc, GFP_SHARED) to be revoked.
    # Not of a kmalloc in one domain: that import is the direct map at the
    # same address as `buf`, and a free after the revoke could not tell the
    # two apart (it would drop buf's reference).
    rev = None
    if kind == "vmalloc" or shared:
        rev = c.import_handle(hrev)
    w_out.write("written %d\n" % (1 if rev else 0))
    w_out.flush()

    check(r_in.readline().strip() == "revoked", "B: A did not revoke")
    c.meminfo()     # reads the daemon's event
    raises_errno(errno.EACCES, c.import_handle, hrev)
    if rev:
        # its mapping made inaccessible (PROT_NONE) at the next library call
        perms = mapping_perms(rev.address)
        check(perms is not None and perms.startswith("---"),
              "B: revoked import still mapped %s" % perms)
        rev.free()
    w_out.write("done\n")
    w_out.flush()

    # A frees and exits; B still reads
    check(sys.stdin.readline().strip() == "A gone", "B: no word from the driver")
    check((a == pattern(np, n) * 3 + 7).all(), "B: values changed after A left")
    a[0] = 1
    check(a[0] == 1, "B: cannot write after A left")
    del a
    buf.free()
    c.close()


def role_main(argv):
    role, path, kind, size, shared, cross, fd_in, fd_out = argv
    km = import_kmalloc()
    import numpy as np
    import ctypes  # noqa: F401 - before B drops root (the interpreter may sit in /root)
    fn = role_a if role == "A" else role_b
    fn(km, np, path, kind, int(size), shared == "1", cross == "1",
       os.fdopen(int(fd_in), "r"), os.fdopen(int(fd_out), "w"))
    sys.exit(0)


def run_pair(km, d, kind, size, shared, cross):
    name = "%s%s %d bytes%s" % ("shared " if shared else "", kind, size,
                               " across uids" if cross else "")
    ab_r, ab_w = os.pipe()
    ba_r, ba_w = os.pipe()
    common = [d.path, kind, str(size), "1" if shared else "0", "1" if cross else "0"]
    me = [sys.executable, os.path.abspath(__file__), "--role"]
    a = subprocess.Popen(me + ["A"] + common + [str(ba_r), str(ab_w)], pass_fds=(ba_r, ab_w))
    b = subprocess.Popen(me + ["B"] + common + [str(ab_r), str(ba_w)], pass_fds=(ab_r, ba_w),
                         stdin=subprocess.PIPE, text=True)
    for fd in (ab_r, ab_w, ba_r, ba_w):
        os.close(fd)
    try:
        rc = a.wait(60)
        check(rc == 0, "%s: process A exited with %d" % (name, rc))
        b.stdin.write("A gone\n")
        b.stdin.close()
        rc = b.wait(60)
        check(rc == 0, "%s: process B exited with %d" % (name, rc))
    except subprocess.TimeoutExpired:
        fail("%s: a process hung" % name)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
    print("share: %s: ok" % name, flush=True)


def run_share(km, d):
    if not have_numpy():
        print("SKIP: numpy is missing (Debian: python3-numpy; scripts/setup installs it)")
        sys.exit(77)
    with km.Client(d.path) as c:
        base = c.meminfo()
    cases = [("kmalloc", 4096, False, False),       # one object of a slab
             ("kmalloc", 1 << 20, False, False),    # a large kmalloc
             ("vmalloc", 5 << 20, False, False)]
    if os.geteuid() == 0:
        cases += [("kmalloc", 1 << 20, True, True),
                  ("vmalloc", 3 << 20, True, True)]
    else:
        print("share: not root: the cases across uids are skipped")
    for kind, size, shared, cross in cases:
        run_pair(km, d, kind, size, shared, cross)
        wait_figures(km, d.path, base)
    print("share: all checks passed")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        role_main(sys.argv[2:])
    if len(sys.argv) != 3 or sys.argv[2] not in ("api", "share"):
        print(__doc__)
        sys.exit(2)
    kmallocd, mode = sys.argv[1], sys.argv[2]
    km = import_kmalloc()
    if mode == "share" and not have_numpy():
        print("SKIP: numpy is missing (Debian: python3-numpy; scripts/setup installs it)")
        sys.exit(77)
    d = Daemon(kmallocd, os.environ.get("KMALLOC_TEST_BACKING", "shmem"))
    try:
        if mode == "api":
            run_api(km, d)
        else:
            run_share(km, d)
    except SystemExit as e:
        if e.code not in (0, None):
            d.dump()
        raise
    finally:
        d.stop()


if __name__ == "__main__":
    main()
