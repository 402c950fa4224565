"""Password-protected PDFs for the ``--password`` tests, written byte by byte (no PDF library in the
test environment can encrypt): the PDF standard security handler, revision 2 (RC4, 40-bit key),
which every reader, PDFium included, still opens. Page n is the size of page n of
:func:`tests.support.llama_index.make_pdf`, so the test server can tell the pages apart.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

from tests.support.llama_index import PAGE_WIDTH, page_height
from tests.support.pdfs import write_pdf

# ISO 32000-1, 7.6.3.3, algorithm 2: the padding string.
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_FILE_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
_PERMISSIONS = -4  # everything allowed (bits 1-2 clear, the rest set)


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def _padded(password: str) -> bytes:
    return (password.encode("latin-1") + _PAD)[:32]


def _security(user: str, owner: str) -> tuple[bytes, bytes, bytes]:
    """(file key, /O, /U) for revision 2."""
    o_key = hashlib.md5(_padded(owner or user)).digest()[:5]  # algorithm 3
    o_value = _rc4(o_key, _padded(user))
    key = hashlib.md5(_padded(user) + o_value + struct.pack("<i", _PERMISSIONS) + _FILE_ID).digest()[:5]  # algorithm 2
    u_value = _rc4(key, _PAD)  # algorithm 4
    return key, o_value, u_value


def _object_key(key: bytes, number: int) -> bytes:
    return hashlib.md5(key + struct.pack("<i", number)[:3] + b"\x00\x00").digest()[: len(key) + 5]


def _hex(data: bytes) -> bytes:
    return b"<" + data.hex().encode() + b">"


def encrypted_pdf(path: Path, pages: int, password: str, owner_password: str = "owner-secret") -> Path:
    """A PDF of ``pages`` vector pages (a frame and a filled box) that opens only with ``password``."""
    key, o_value, u_value = _security(password, owner_password)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pages)).encode()
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Filter /Standard /V 1 /R 2 /Length 40 /O " + _hex(o_value) + b" /U " + _hex(u_value)
        + b" /P %d >>" % _PERMISSIONS,
    ]  # fmt: skip
    for i in range(pages):
        width, height = PAGE_WIDTH, page_height(i + 1)
        content = b"0 0 0 RG 4 4 %d %d re S 0.2 0.3 0.8 rg 20 20 %d %d re f\n" % (width - 8, height - 8, width // 2, i * 8 + 16)
        number = 5 + 2 * i
        sealed = _rc4(_object_key(key, number), content)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R >>" % (width, height, number))
        objects.append(b"<< /Length %d >>\nstream\n" % len(sealed) + sealed + b"\nendstream")
    trailer = b"/Encrypt 3 0 R /ID [" + _hex(_FILE_ID) * 2 + b"] "
    data = write_pdf(objects, trailer=trailer, version=b"1.4")
    path.write_bytes(data)
    return path
