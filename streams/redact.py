"""Credentials never reach messages or logs: stream URLs (and any text quoting one) are printed with the
user information and credential-like query parameters replaced by ``***``."""
from __future__ import annotations

import re

# Everything between "://" and the last "@" before the query, the fragment or the end of the URL: a
# password may itself hold "@" (or an unescaped "/"), so the last "@" is the one that ends the userinfo.
_USERINFO = re.compile(r"(?<=://)[^?#\s'\"<>]*@")
_SECRET_KEYS = (
    "password", "passwd", "pass", "pwd", "secret", "token", "access_token", "auth", "authorization", "key",
    "apikey", "api_key", "signature", "sig", "credential", "credentials", "user", "username", "login",
)
_QUERY_SECRET = re.compile(r"([?&;](?:%s)=)[^&#;\s'\"<>]*" % "|".join(_SECRET_KEYS), re.IGNORECASE)


def redact_url(text: str) -> str:
    """``rtsp://user:secret@host/path?token=abc`` -> ``rtsp://***@host/path?token=***``; works on any
    text, so that a library's error message quoting the URL is safe to print too."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub("***@", text))
