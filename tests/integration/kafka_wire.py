"""Minimal hand-built Kafka requests for tests that need exact control of the bytes (a real
client will not resend a chosen batch on purpose). Only what the tests use."""
import socket
import struct
import time


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _varint(n):
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


TRANSACTIONAL = 0x10  # batch attribute bit 4


def record_batch(values, producer_id=-1, epoch=-1, base_sequence=-1, ts=None, attributes=0):
    """A magic-2 uncompressed batch of records with null keys (attributes=TRANSACTIONAL for a
    transactional producer's batch)."""
    ts = int(time.time() * 1000) if ts is None else ts
    recs = b""
    for i, v in enumerate(values):
        body = b"\x00" + _varint(0) + _varint(i) + _varint(-1) + _varint(len(v)) + v + _varint(0)
        recs += _varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", attributes, len(values) - 1, ts, ts, producer_id, epoch,
                            base_sequence, len(values)) + recs
    crc = crc32c(after_crc)
    after_len = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_len)) + after_len


def _request(sock, api, version, corr, body):
    hdr = struct.pack(">hhih", api, version, corr, 4) + b"test"
    data = hdr + body
    sock.sendall(struct.pack(">i", len(data)) + data)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    resp = _recv(sock, size)
    assert struct.unpack(">i", resp[:4])[0] == corr
    return resp[4:]


def s16(s):
    """STRING from str or bytes (bytes may hold any byte, NUL included); None is null."""
    if s is None:
        return struct.pack(">h", -1)
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">h", len(b)) + b


def frame(api, version, corr, body, client_id=b"test"):
    """A request frame with header v1 (size prefix included)."""
    data = struct.pack(">hhih", api, version, corr, len(client_id)) + client_id + body
    return struct.pack(">i", len(data)) + data


def read_frame(sock):
    """One response: (correlation id, the bytes after it)."""
    size = struct.unpack(">i", _recv(sock, 4))[0]
    resp = _recv(sock, size)
    return struct.unpack(">i", resp[:4])[0], resp[4:]


def _recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def produce_v7(bootstrap, topic, partition, batch, acks=-1):
    """Returns (error_code, base_offset) of the one partition."""
    host, port = bootstrap.split(":")
    name = topic.encode()
    body = struct.pack(">hhi", -1, acks, 10000)  # null transactional id, acks, timeout
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iii", 1, partition, len(batch)) + batch
    with socket.create_connection((host, int(port)), timeout=10) as s:
        resp = _request(s, 0, 7, 1, body)
    # [topics: name, [partition, error, base_offset, log_append_time, log_start]] throttle
    off = 4
    nlen = struct.unpack(">h", resp[off + 0:off + 2])[0]
    off += 2 + nlen + 4
    _, err, base = struct.unpack(">ihq", resp[off:off + 14])
    return err, base


# ---- flexible (compact) encodings and a reader, for versions no installed client sends ----

def uvarint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def cstr(s):
    """COMPACT_NULLABLE_STRING."""
    if s is None:
        return uvarint(0)
    b = s.encode()
    return uvarint(len(b) + 1) + b


class Reader:
    def __init__(self, data):
        self.d, self.o = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.o)[0]
        self.o += struct.calcsize(fmt)
        return v

    def raw(self, n):
        v = self.d[self.o:self.o + n]
        self.o += n
        return v

    def uvarint(self):
        shift = n = 0
        while True:
            b = self.d[self.o]
            self.o += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n

    def s16(self):
        """STRING / NULLABLE_STRING as bytes (None for null)."""
        n = self.take(">h")
        if n < 0:
            return None
        return self.raw(n)

    def cstr(self):
        n = self.uvarint()
        if n == 0:
            return None
        return self.raw(n - 1).decode()

    def tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.o += self.uvarint()


def call(bootstrap, api_key, version, body, client_id=b"test", flexible=True, corr=7):
    """Sends one request on a new connection (header v2 when flexible, else v1) and returns a
    Reader past the response header (v1 / v0)."""
    host, port = bootstrap.split(":")
    hdr = struct.pack(">hhih", api_key, version, corr, len(client_id)) + client_id
    if flexible:
        hdr += uvarint(0)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv(s, 4))[0]
        data = _recv(s, size)
    r = Reader(data)
    assert r.take(">i") == corr
    if flexible:
        r.tags()
    return r


def flexible_call(bootstrap, api_key, version, body, corr=99):
    """One flexible request (header v2) of client id "test": a Reader past the response header v1."""
    return call(bootstrap, api_key, version, body, corr=corr)
