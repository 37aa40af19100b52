"""Reading one HTTP/1.1 response off an asyncio stream, for the clients that speak raw HTTP on
pooled keep-alive connections to stay cheap: the fake Graph API's status sender and the bench
load generator. No Django, no project imports (the load generator must stay bare)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

__all__ = ["ResponseHead", "read_body", "read_head", "read_response"]

_NO_BODY = frozenset({204, 304})


@dataclass(frozen=True)
class ResponseHead:
    version: str
    status: int
    headers: dict[str, str]  # names and values lower-cased


async def read_head(reader: asyncio.StreamReader) -> ResponseHead:
    """The status line and headers; raises IncompleteReadError if the peer closed first."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    version, status_text = lines[0].split(" ", 2)[:2]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    return ResponseHead(version, int(status_text), headers)


async def read_body(reader: asyncio.StreamReader, head: ResponseHead) -> bool:
    """Read (and drop) the body; returns whether the connection may be used again."""
    headers = head.headers
    keep = headers.get("connection") != "close" and (
        head.version != "HTTP/1.0" or headers.get("connection") == "keep-alive"
    )
    if head.status in _NO_BODY or 100 <= head.status < 200:
        return keep
    if headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                return keep
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
        return keep
    await reader.read()  # a body that ends with the connection
    return False


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """One whole response: (status, whether the connection may be used again)."""
    head = await read_head(reader)
    return head.status, await read_body(reader, head)
