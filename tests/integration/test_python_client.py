#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A kmallocd client in another language, written from proto/kmalloc.proto and
the README alone: Hello/Welcome with the domain memfd over SCM_RIGHTS, the
direct map, kmalloc, bulk, vmalloc frames, free, double free, release lists,
meminfo, pipelined requests answered by id, and garbage closing the connection.

Usage: test_python_client.py KMALLOCD PB2_DIR   (KMALLOC_TEST_BACKING picks
shmem or hugetlb). Exits 0 on success, 77 when it cannot run here."""
import array
import errno
import mmap
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)
GFP_KERNEL, GFP_ZERO = 0xCC0, 0x100


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Client:
    def __init__(self, path, pb):
        self.pb = pb
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.connect(path)
        self.next_id = 1
        self.sock.send(self.req(hello=pb.Hello(version=1, name="pyclient")).SerializeToString())
        data, anc, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4 * 4))
        reply = pb.Reply.FromString(data)
        check(reply.error == 0 and reply.WhichOneof("body") == "welcome", "no welcome")
        fds = array.array("i")
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % 4])
        check(len(fds) == 1, "welcome carries %d fds, wanted 1" % len(fds))
        self.w = reply.welcome
        self.memfd = fds[0]
        flags = mmap.MAP_SHARED | (MAP_NORESERVE if self.w.hugetlb else 0)
        self.map = mmap.mmap(self.memfd, self.w.pool_size, flags)

    def req(self, release=(), **body):
        r = self.pb.Request(id=getattr(self, "next_id", 1), release=list(release), **body)
        self.next_id = r.id + 1
        return r

    def call(self, release=(), **body):
        r = self.req(release, **body)
        self.sock.send(r.SerializeToString())
        reply = self.pb.Reply.FromString(self.sock.recv(1 << 20))
        check(reply.id == r.id, "reply id %d for request %d" % (reply.id, r.id))
        return reply


def main():
    kmallocd, pb2_dir = sys.argv[1], sys.argv[2]
    sys.path.insert(0, pb2_dir)
    import kmalloc_pb2 as pb

    backing = os.environ.get("KMALLOC_TEST_BACKING", "shmem")
    tmp = tempfile.mkdtemp(prefix="kmpy.")
    path = os.path.join(tmp, "sock")
    args = [kmallocd, "--socket", path, "--pool-size", "32M"]
    if backing == "hugetlb":
        free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
        if free < 16:
            print("SKIP: the hugetlb run needs 16 free hugepages, has %d" % free)
            sys.exit(77)
        args.append("--require-hugepages")
    else:
        args += ["--backing", "shmem"]
    log = open(os.path.join(tmp, "log"), "w+")
    daemon = subprocess.Popen(args, stderr=log, stdout=log)
    try:
        for _ in range(500):
            if os.path.exists(path):
                try:
                    socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).connect(path)
                    break
                except OSError:
                    pass
            time.sleep(0.01)
        run(path, pb, backing)
    finally:
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(10)
        if rc != 0:
            log.seek(0)
            print(log.read())
            fail("kmallocd exited with %d" % rc)
    shutil.rmtree(tmp, ignore_errors=True)
    print("python client: all checks passed")


def run(path, pb, backing):
    c = Client(path, pb)
    w = c.w
    check(w.version == 1 and w.frame_size == 2 << 20 and w.page_size == 4096, "welcome fields")
    check(w.hugetlb == (backing == "hugetlb"), "backing %s but hugetlb=%s" % (backing, w.hugetlb))
    check(len(w.token) == 16, "token of %d bytes" % len(w.token))

    # kmalloc: ksize is the class size, power-of-two sizes aligned to their size
    r = c.call(alloc=pb.Alloc(size=100, gfp=GFP_KERNEL))
    check(r.error == 0 and len(r.alloc.grants) == 1, "alloc 100: %s" % r)
    g = r.alloc.grants[0]
    check(g.size == 128 and g.phys % 64 == 0, "ksize/alignment of 100 bytes: %s" % g)
    c.map[g.phys:g.phys + 5] = b"hello"

    # a second client of the same uid sees the bytes at the same phys
    c2 = Client(path, pb)
    check(c2.map[g.phys:g.phys + 5] == b"hello", "second client does not see the data")

    # bulk, all distinct and inside the pool
    r = c.call(alloc=pb.Alloc(size=4096, gfp=GFP_KERNEL | GFP_ZERO, count=10))
    check(r.error == 0 and len(r.alloc.grants) == 10, "bulk alloc")
    physes = sorted(x.phys for x in r.alloc.grants)
    check(all(b - a >= 4096 for a, b in zip(physes, physes[1:])), "bulk objects overlap")
    check(all(p % 4096 == 0 and p + 4096 <= w.pool_size for p in physes), "bulk placement")
    check(all(c.map[p:p + 4096] == bytes(4096) for p in physes), "__GFP_ZERO not cleared")
    bulk_ids = [x.id for x in r.alloc.grants]

    # vmalloc: frames to map side by side
    r = c.call(vmalloc=pb.Vmalloc(size=5 << 20, gfp=GFP_KERNEL, caller="pyclient"))
    check(r.error == 0 and len(r.vmalloc.frames) == 3 and r.vmalloc.size == 6 << 20, "vmalloc")
    for i, f in enumerate(r.vmalloc.frames):
        off = f * w.frame_size
        c.map[off:off + 4] = bytes([i, i, i, i])
    vm_id = r.vmalloc.id

    # meminfo
    r = c.call(meminfo=pb.MeminfoRequest())
    m = r.meminfo
    check(m.total == 32 << 20 and m.vmalloc_used == 6 << 20 and m.free < m.total, "meminfo %s" % m)

    # free, double free, freeing another client's grant, release lists
    r = c.call(free=pb.Free(grants=[g.id]))
    check(r.error == 0 and r.free.freed == 1, "free")
    r = c.call(free=pb.Free(grants=[g.id]))
    check(r.error == errno.ENOENT and list(r.free.unknown) == [g.id], "double free: %s" % r)
    r = c2.call(free=pb.Free(grants=[vm_id]))
    check(r.error == errno.ENOENT, "freeing another client's grant was allowed")
    r = c.call(release=bulk_ids + [999999], nop=pb.Nop())
    check(r.error == 0 and list(r.release_failed) == [999999], "release: %s" % r)

    # pipelined requests, answered by id
    reqs = [c.req(alloc=pb.Alloc(size=64, gfp=GFP_KERNEL)) for _ in range(20)]
    for q in reqs:
        c.sock.send(q.SerializeToString())
    got = set()
    for _ in reqs:
        got.add(pb.Reply.FromString(c.sock.recv(1 << 20)).id)
    check(got == set(q.id for q in reqs), "pipelined replies do not match the requests")

    # errors are errno values
    r = c.call(alloc=pb.Alloc(size=0, gfp=GFP_KERNEL))
    check(r.error == errno.EINVAL and r.message, "size 0: %s" % r)
    r = c.call(alloc=pb.Alloc(size=5 << 20, gfp=GFP_KERNEL))
    check(r.error == errno.ENOMEM, "5 MiB kmalloc: %s" % r)
    r = c.call(nop=pb.Nop())
    check(r.error == 0 and r.WhichOneof("body") == "nop", "nop")
    # id 0 is refused, and no reply is ever an empty packet
    c.sock.send(pb.Request(id=0, nop=pb.Nop()).SerializeToString())
    data = c.sock.recv(1 << 20)
    check(data != b"", "an empty reply packet")
    r = pb.Reply.FromString(data)
    check(r.id == 0 and r.error == errno.EINVAL, "id 0: %s" % r)

    # garbage closes that connection only
    c2.sock.send(b"\xff\xff\xff\xff\xff\xff\xff\xff")
    check(c2.sock.recv(1 << 20) == b"", "garbage did not close the connection")
    r = c.call(nop=pb.Nop())
    check(r.error == 0, "the daemon stopped serving after garbage")


if __name__ == "__main__":
    main()
