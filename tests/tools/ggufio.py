#!/usr/bin/env python3
"""(cairn copy of ../shared/tools/ggufio.py, extended: as_f32 also decodes Q4_1, Q5_1, Q2_K, Q3_K,
Q4_K, Q5_K and BF16, written from the block layouts in src/kernels/blocks.h.)

Small self-contained GGUF v3 reader/writer (numpy only) used to derive the staged test models.

Reader: load(path) -> (kv: OrderedDict, tensors: OrderedDict name -> (ggml_type, ne(list), raw bytes))
        as_f32(ggml_type, ne, raw) -> numpy array with shape reversed(ne) (row-major, ne[0] fastest)
Writer: Writer().kv(key, vtype, value) / .tensor(name, ggml_type, ne, raw) / .write(path)
Quant : quant_q8_0(x), quant_q4_0(x) follow ggml's *_ref reference quantizers (rows of ne0 % 32 == 0).
"""
import struct, collections
import numpy as np

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?",
        U64: "<Q", I64: "<q", F64: "<d"}
_NP = {U8: np.uint8, I8: np.int8, U16: np.uint16, I16: np.int16, U32: np.uint32, I32: np.int32,
       F32: np.float32, U64: np.uint64, I64: np.int64, F64: np.float64}
# ggml types
GGML_F32, GGML_F16, GGML_Q4_0, GGML_Q8_0 = 0, 1, 2, 8
BLK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34),
       10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210)}


def nbytes(gtype, ne):
    n = int(np.prod(ne))
    bs, ts = BLK[gtype]
    assert n % bs == 0
    return n // bs * ts


# ---------------------------------------------------------------- reader
def load(path):
    b = open(path, "rb").read()
    o = [4]
    assert b[:4] == b"GGUF"

    def u(fmt):
        v = struct.unpack_from(fmt, b, o[0])[0]
        o[0] += struct.calcsize(fmt)
        return v

    def s():
        n = u("<Q")
        v = b[o[0]:o[0] + n].decode("utf-8")
        o[0] += n
        return v

    def val(t):
        if t in _FMT:
            return u(_FMT[t])
        if t == STR:
            return s()
        if t == ARR:
            et = u("<I")
            n = u("<Q")
            if et in _NP:
                a = np.frombuffer(b, dtype=_NP[et], count=n, offset=o[0]).copy()
                o[0] += a.nbytes
                return (et, a)
            return (et, [val(et) for _ in range(n)])
        raise ValueError(t)

    ver = u("<I")
    assert ver == 3, ver
    nt = u("<Q")
    nkv = u("<Q")
    kv = collections.OrderedDict()
    for _ in range(nkv):
        k = s()
        t = u("<I")
        kv[k] = (t, val(t))
    infos = []
    for _ in range(nt):
        name = s()
        nd = u("<I")
        ne = [u("<Q") for _ in range(nd)]
        gt = u("<I")
        off = u("<Q")
        infos.append((name, gt, ne, off))
    align = kv.get("general.alignment", (U32, 32))[1]
    start = (o[0] + align - 1) // align * align
    tensors = collections.OrderedDict()
    for name, gt, ne, off in infos:
        n = nbytes(gt, ne)
        raw = b[start + off:start + off + n]
        assert len(raw) == n, "truncated tensor %s" % name
        tensors[name] = (gt, ne, raw)
    return kv, tensors


def as_f32(gt, ne, raw):
    shape = tuple(reversed(ne))
    if gt == GGML_F32:
        return np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()
    if gt == GGML_F16:
        return np.frombuffer(raw, dtype=np.float16).astype(np.float32).reshape(shape)
    if gt == GGML_Q8_0:
        blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("q", "i1", 32)]))
        return (blk["d"].astype(np.float32)[:, None] * blk["q"].astype(np.float32)).reshape(shape)
    if gt == GGML_Q4_0:
        blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("q", "u1", 16)]))
        lo = (blk["q"] & 0x0F).astype(np.int32) - 8
        hi = (blk["q"] >> 4).astype(np.int32) - 8
        q = np.concatenate([lo, hi], axis=1).astype(np.float32)
        return (blk["d"].astype(np.float32)[:, None] * q).reshape(shape)
    if gt == 6:  # Q5_0
        blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qh", "<u4"), ("q", "u1", 16)]))
        j = np.arange(16)
        qh = blk["qh"][:, None]
        xh0 = ((qh >> j) << 4) & 0x10
        xh1 = (qh >> (j + 12)) & 0x10
        x0 = ((blk["q"] & 0x0F) | xh0).astype(np.int32) - 16
        x1 = ((blk["q"] >> 4) | xh1).astype(np.int32) - 16
        q = np.concatenate([x0, x1], axis=1).astype(np.float32)
        return (blk["d"].astype(np.float32)[:, None] * q).reshape(shape)
    if gt == 14:  # Q6_K
        blk = np.frombuffer(raw, dtype=np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("sc", "i1", 16), ("d", "<f2")]))
        nb = blk.shape[0]
        y = np.zeros((nb, 256), np.float32)
        d = blk["d"].astype(np.float32)[:, None]
        for n in range(2):
            ql = blk["ql"][:, 64 * n:64 * n + 64].astype(np.int32)
            qh = blk["qh"][:, 32 * n:32 * n + 32].astype(np.int32)
            sc = blk["sc"][:, 8 * n:8 * n + 8].astype(np.float32)
            l = np.arange(32)
            isx = l // 16
            q1 = ((ql[:, l] & 0xF) | (((qh[:, l] >> 0) & 3) << 4)) - 32
            q2 = ((ql[:, l + 32] & 0xF) | (((qh[:, l] >> 2) & 3) << 4)) - 32
            q3 = ((ql[:, l] >> 4) | (((qh[:, l] >> 4) & 3) << 4)) - 32
            q4 = ((ql[:, l + 32] >> 4) | (((qh[:, l] >> 6) & 3) << 4)) - 32
            base = 128 * n
            y[:, base + l] = d * sc[:, isx] * q1
            y[:, base + l + 32] = d * sc[:, isx + 2] * q2
            y[:, base + l + 64] = d * sc[:, isx + 4] * q3
            y[:, base + l + 96] = d * sc[:, isx + 6] * q4
        return y.reshape(shape)
    if gt in (3, 7):  # Q4_1, Q5_1: value = d * q + m
        if gt == 3:
            blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("m", "<f2"), ("q", "u1", 16)]))
            q = np.concatenate([blk["q"] & 0x0F, blk["q"] >> 4], axis=1).astype(np.float32)
        else:
            blk = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("m", "<f2"), ("qh", "<u4"), ("q", "u1", 16)]))
            j = np.arange(16)
            qh = blk["qh"][:, None]
            x0 = (blk["q"] & 0x0F) | (((qh >> j) << 4) & 0x10)
            x1 = (blk["q"] >> 4) | ((qh >> (j + 12)) & 0x10)
            q = np.concatenate([x0, x1], axis=1).astype(np.float32)
        return (blk["d"].astype(np.float32)[:, None] * q + blk["m"].astype(np.float32)[:, None]).reshape(shape)
    if gt in (12, 13):  # Q4_K, Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins
        fields = [("d", "<f2"), ("dmin", "<f2"), ("sc", "u1", 12)]
        if gt == 13:
            fields.append(("qh", "u1", 32))
        blk = np.frombuffer(raw, dtype=np.dtype(fields + [("qs", "u1", 128)]))
        nb = blk.shape[0]
        sc6 = blk["sc"].astype(np.int32)
        scale = np.zeros((nb, 8), np.float32)
        mins = np.zeros((nb, 8), np.float32)
        for j in range(8):
            if j < 4:
                scale[:, j] = sc6[:, j] & 63
                mins[:, j] = sc6[:, j + 4] & 63
            else:
                scale[:, j] = (sc6[:, j + 4] & 0xF) | ((sc6[:, j - 4] >> 6) << 4)
                mins[:, j] = (sc6[:, j + 4] >> 4) | ((sc6[:, j] >> 6) << 4)
        d = blk["d"].astype(np.float32)[:, None]
        dm = blk["dmin"].astype(np.float32)[:, None]
        y = np.zeros((nb, 256), np.float32)
        qs = blk["qs"].astype(np.int32)
        for j in range(4):
            lo = qs[:, 32 * j:32 * j + 32] & 0xF
            hi = qs[:, 32 * j:32 * j + 32] >> 4
            if gt == 13:
                qh = blk["qh"].astype(np.int32)
                lo = lo + np.where(qh & (1 << (2 * j)), 16, 0)
                hi = hi + np.where(qh & (2 << (2 * j)), 16, 0)
            y[:, 64 * j:64 * j + 32] = d * scale[:, 2 * j:2 * j + 1] * lo - dm * mins[:, 2 * j:2 * j + 1]
            y[:, 64 * j + 32:64 * j + 64] = d * scale[:, 2 * j + 1:2 * j + 2] * hi - dm * mins[:, 2 * j + 1:2 * j + 2]
        return y.reshape(shape)
    if gt == 10:  # Q2_K: 16 sub-blocks of 16, 4-bit scale and min each
        blk = np.frombuffer(raw, dtype=np.dtype([("sc", "u1", 16), ("qs", "u1", 64), ("d", "<f2"), ("dmin", "<f2")]))
        nb = blk.shape[0]
        y = np.zeros((nb, 256), np.float32)
        d = blk["d"].astype(np.float32)[:, None]
        dm = blk["dmin"].astype(np.float32)[:, None]
        sc = blk["sc"].astype(np.int32)
        qs = blk["qs"].astype(np.int32)
        for half in range(2):
            for j in range(4):
                for part in range(2):
                    l = np.arange(16) + 16 * part
                    si = half * 8 + 2 * j + part
                    q = (qs[:, half * 32 + l] >> (2 * j)) & 3
                    y[:, half * 128 + j * 32 + l] = d * (sc[:, si:si + 1] & 0xF) * q - dm * (sc[:, si:si + 1] >> 4)
        return y.reshape(shape)
    if gt == 11:  # Q3_K: 16 sub-blocks of 16, 6-bit signed scales, high bit in hmask
        blk = np.frombuffer(raw, dtype=np.dtype([("hm", "u1", 32), ("qs", "u1", 64), ("sc", "u1", 12), ("d", "<f2")]))
        nb = blk.shape[0]
        y = np.zeros((nb, 256), np.float32)
        d = blk["d"].astype(np.float32)[:, None]
        raw_sc = blk["sc"].astype(np.int32)
        scales = np.zeros((nb, 16), np.float32)
        for i in range(16):
            low4 = raw_sc[:, i] & 0xF if i < 8 else raw_sc[:, i - 8] >> 4
            high2 = (raw_sc[:, 8 + i % 4] >> (2 * (i // 4))) & 3
            scales[:, i] = (low4 | (high2 << 4)) - 32
        qs = blk["qs"].astype(np.int32)
        hm = blk["hm"].astype(np.int32)
        for half in range(2):
            for j in range(4):
                l = np.arange(32)
                q = ((qs[:, half * 32 + l] >> (2 * j)) & 3) - np.where(hm[:, l] & (1 << (half * 4 + j)), 0, 4)
                si = half * 8 + 2 * j + (l >= 16)
                y[:, half * 128 + j * 32 + l] = d * scales[:, si] * q
        return y.reshape(shape)
    if gt == 30:  # BF16
        u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return u.view(np.float32).reshape(shape).copy()
    raise ValueError("type %d" % gt)


# ---------------------------------------------------------------- quantizers (ggml reference semantics)
def _roundf(v):  # C roundf: half away from zero
    return np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))


def quant_q8_0(x):
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / np.float32(127.0)).astype(np.float32)
    idv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    q = _roundf(x * idv[:, None]).astype(np.int8)
    out = np.zeros(x.shape[0], dtype=np.dtype([("d", "<f2"), ("q", "i1", 32)]))
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def quant_q4_0(x):
    x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    idx = np.abs(x).argmax(axis=1)
    mx = x[np.arange(x.shape[0]), idx]  # signed value with the largest magnitude
    d = (mx / np.float32(-8.0)).astype(np.float32)
    idv = np.where(d != 0, np.float32(1.0) / np.where(d != 0, d, 1), 0).astype(np.float32)
    v = x * idv[:, None] + np.float32(8.5)
    q = np.minimum(15, np.trunc(v).astype(np.int8).astype(np.int32)).astype(np.uint8)  # (int8_t) cast truncates
    packed = (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)
    out = np.zeros(x.shape[0], dtype=np.dtype([("d", "<f2"), ("q", "u1", 16)]))
    out["d"] = d.astype(np.float16)
    out["q"] = packed
    return out.tobytes()


def encode(gt, arr):
    """arr: numpy array whose shape is reversed(ne). Returns raw bytes for ggml type gt."""
    if gt == GGML_F32:
        return np.ascontiguousarray(arr, dtype=np.float32).tobytes()
    if gt == GGML_F16:
        return np.ascontiguousarray(arr, dtype=np.float32).astype(np.float16).tobytes()
    if gt == GGML_Q8_0:
        return quant_q8_0(arr)
    if gt == GGML_Q4_0:
        return quant_q4_0(arr)
    raise ValueError(gt)


# ---------------------------------------------------------------- writer
class Writer:
    def __init__(self, alignment=32):
        self.kvs = []
        self.tensors = []
        self.alignment = alignment

    def kv(self, key, vtype, value):
        self.kvs.append((key, vtype, value))
        return self

    def copy_kv(self, kv, skip=()):
        for k, (t, v) in kv.items():
            if k not in skip:
                self.kvs.append((k, t, v))
        return self

    def tensor(self, name, gt, ne, raw):
        assert len(raw) == nbytes(gt, ne), (name, len(raw), nbytes(gt, ne))
        self.tensors.append((name, gt, list(ne), raw))
        return self

    def array(self, name, gt, arr):
        ne = list(reversed(arr.shape))
        return self.tensor(name, gt, ne, encode(gt, arr))

    @staticmethod
    def _s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _val(self, t, v):
        if t in _FMT:
            return struct.pack(_FMT[t], v)
        if t == STR:
            return self._s(v)
        if t == ARR:
            et, items = v
            out = struct.pack("<IQ", et, len(items))
            if et in _NP:
                return out + np.ascontiguousarray(items, dtype=_NP[et]).tobytes()
            return out + b"".join(self._val(et, i) for i in items)
        raise ValueError(t)

    def write(self, path):
        hdr = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(self.tensors), len(self.kvs)))
        for k, t, v in self.kvs:
            hdr += self._s(k) + struct.pack("<I", t) + self._val(t, v)
        off = 0
        offs = []
        for name, gt, ne, raw in self.tensors:
            offs.append(off)
            hdr += self._s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
            hdr += struct.pack("<IQ", gt, off)
            off += (len(raw) + self.alignment - 1) // self.alignment * self.alignment
        pad = (-len(hdr)) % self.alignment
        with open(path, "wb") as f:
            f.write(hdr + b"\0" * pad)
            for (name, gt, ne, raw), o in zip(self.tensors, offs):
                f.write(raw)
                f.write(b"\0" * ((-len(raw)) % self.alignment))
