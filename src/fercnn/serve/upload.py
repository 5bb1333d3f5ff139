"""The image's bytes out of a request body already read into memory: a multipart form's
``file`` field (what a browser's form or ``curl -F`` sends) or the body itself when its
Content-Type is an image. python-multipart's low-level parser runs on the bytes in memory:
Starlette's own form parsing would spool uploads over 1 MB to a temporary file."""

from __future__ import annotations

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError

FIELD = "file"
RAW_TYPES = ("application/octet-stream",)  # besides image/*


def image_bytes(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """(the image's bytes, its file name if the form gave one); 415 for a body of another
    type, 422 for a form without a ``file`` field."""
    kind, params = parse_options_header(content_type or "")
    media = kind.decode("latin-1").lower()
    if media == "multipart/form-data":
        return _form_file(body, params.get(b"boundary"))
    if media.startswith("image/") or media in RAW_TYPES:
        return body, None
    raise ApiError(415, f"send an image: a multipart form with a '{FIELD}' field, or the "
                   f"image itself with an image/* Content-Type, not {media or 'no Content-Type'}")


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.data: list[bytes] = []
        self.field, self.value = b"", b""


def _parts(body: bytes, boundary: bytes) -> list[_Part]:
    """Every part of a multipart body with its headers and data."""
    parts: list[_Part] = []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        parts[-1].field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        parts[-1].value += data[start:end]

    def on_header_end() -> None:
        part = parts[-1]
        part.headers[part.field.lower()] = part.value
        part.field, part.value = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data.append(data[start:end])

    parser = MultipartParser(boundary, {
        "on_part_begin": lambda: parts.append(_Part()), "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_part_data": on_part_data})
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as e:
        raise ApiError(422, f"malformed multipart body ({e})") from None
    return parts


def _form_file(body: bytes, boundary: bytes | None) -> tuple[bytes, str | None]:
    if not boundary:
        raise ApiError(422, "a multipart body needs a boundary in its Content-Type")
    for part in _parts(body, boundary):
        _, params = parse_options_header(part.headers.get(b"content-disposition", b""))
        if params.get(b"name") == FIELD.encode():
            filename = params.get(b"filename")
            name = filename.decode("utf-8", "replace") if filename else None
            return b"".join(part.data), name
    raise ApiError(422, f"the multipart form has no '{FIELD}' field")
