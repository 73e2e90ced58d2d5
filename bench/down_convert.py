"""Fetch v3 (down-converted to magic 1 message sets, log/convert.c) vs Fetch v4 (sendfile) reading
a whole partition with 1 MiB requests. Usage: python3 bench/down_convert.py BIN MB [none|gzip|lz4]."""
import os, socket, struct, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from kafka_wire import _recv, s16
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

BIN = sys.argv[1]
MB = int(sys.argv[2])
port = 39000 + os.getpid() % 1000
d = tempfile.mkdtemp()
p = subprocess.Popen([BIN, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                      "--override", "log.dirs=%s" % d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
bs = "127.0.0.1:%d" % port
adm = AdminClient({"bootstrap.servers": bs}); adm.create_topics([NewTopic("b", 1, 1)])["b"].result(10)
pr = Producer({"bootstrap.servers": bs, "linger.ms": 20, "batch.size": 1 << 20, "compression.type": sys.argv[3] if len(sys.argv) > 3 else "none"})
val = (os.urandom(200) * 5)
for i in range(MB * 1000):
    while True:
        try:
            pr.produce("b", val); break
        except BufferError:
            pr.poll(0.1)
pr.flush(60)

def cpu():
    f = open("/proc/%d/stat" % p.pid).read().split()
    return (int(f[13]) + int(f[14])) / os.sysconf("SC_CLK_TCK")

def hwm():
    for l in open("/proc/%d/status" % p.pid):
        if l.startswith("VmHWM"): return int(l.split()[1]) // 1024

def read_all(version):
    s = socket.create_connection(("127.0.0.1", port))
    off, total, t0, c0 = 0, 0, time.time(), cpu()
    while True:
        body = struct.pack(">iiii", -1, 0, 0, 1 << 20)
        if version >= 4: body += b"\x00"
        body += struct.pack(">i", 1) + s16("b") + struct.pack(">iiqi", 1, 0, off, 1 << 20)
        hdr = struct.pack(">hhih", 1, version, 1, 4) + b"test"
        s.sendall(struct.pack(">i", len(hdr) + len(body)) + hdr + body)
        n = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, n)
        # last int32 length + bytes: records; parse last offset crudely
        o = 4 + 4 + 4 + 2 + 1 + 4 + 4 + 2 + 8 + (8 if version >= 4 else 0) + (4 if version >= 4 else 0)
        rl = struct.unpack_from(">i", data, o)[0]
        rec = data[o + 4:o + 4 + rl]
        if not rec: break
        total += len(rec)
        # walk entries (batch or message): offset, length
        pos, last = 0, off
        while pos + 12 <= len(rec):
            bo, ln = struct.unpack_from(">qi", rec, pos)
            if pos + 12 + ln > len(rec): break
            if version >= 4:
                lod = struct.unpack_from(">i", rec, pos + 23)[0]; last = bo + lod
            else:
                last = bo
            pos += 12 + ln
        off = last + 1
    return total, time.time() - t0, cpu() - c0

for v in (4, 3, 4, 3):
    tot, secs, c = read_all(v)
    print("Fetch v%d: %d MB in %.2f s, broker CPU %.2f s, broker VmHWM %d MB" % (v, tot >> 20, secs, c, hwm()))
p.terminate(); p.wait()
