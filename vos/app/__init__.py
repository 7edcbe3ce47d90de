"""``vos app``: a local web page to click on a video, see masks at once, track, correct and export."""
from .server import App, AppServer, serve
from .session import Session

__all__ = ["App", "AppServer", "Session", "serve"]
