"""Credentials never reach messages or logs: stream URLs (and any text quoting one) are printed with the
user information and credential-like query parameters replaced by ``***``.

Two mechanisms, as a message may quote a URL in any form: the user information and secret parameters of
any URL in a text are found by pattern; and the secrets of each URL vos opens (:func:`remember_secrets`) are
replaced wherever they appear, however a library's message spells or quotes them (a password holding a
quote, a space or a ``#`` ends any pattern early)."""
from __future__ import annotations

import re
import threading
from urllib.parse import quote, unquote

# Everything between "://" and the last "@" before a space, a quote or the end of the text: a password may
# itself hold "@", "/", "?" or "#" unescaped, so the last "@" is the one that ends the user information.
_USERINFO = re.compile(r"(?<=://)[^\s'\"<>]*@")
_SECRET_KEYS = (
    "password", "passwd", "pass", "pwd", "secret", "token", "access_token", "auth", "authorization", "key",
    "apikey", "api_key", "signature", "sig", "credential", "credentials", "user", "username", "login",
)
_QUERY_SECRET = re.compile(r"([?&;](?:%s)=)([^&#;\s'\"<>]*)" % "|".join(_SECRET_KEYS), re.IGNORECASE)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://(.*)@", re.DOTALL)  # a whole URL: its userinfo ends at its last "@"
_SHORTEST = 3  # shorter secrets are left to the patterns: replacing them everywhere would blank ordinary words

_known: set[str] = set()
_lock = threading.Lock()


def remember_secrets(url: str) -> None:
    """From now on, :func:`redact_url` replaces the user information, the password and the secret query
    values of ``url`` (as written, percent-decoded and percent-encoded) wherever they appear."""
    found = []
    if m := _URL.match(url):
        userinfo = m[1]
        found += [userinfo, userinfo.partition(":")[2]]
    found += [value for _, value in _QUERY_SECRET.findall(url)]
    found += [form for s in found for form in (unquote(s), quote(s, safe=""))]
    with _lock:
        _known.update(s for s in found if len(s) >= _SHORTEST)


def redact_url(text: str) -> str:
    """``rtsp://user:secret@host/path?token=abc`` -> ``rtsp://***@host/path?token=***``; works on any
    text, so that a library's error message quoting the URL is safe to print too."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # a secret holding another goes first
    for secret in known:
        text = text.replace(secret, "***")
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub("***@", text))
