"""``vos app``: a local web page to click on a video, see masks at once, track, correct and export."""
from .server import App, AppServer, run_app, serve
from .session import Session

__all__ = ["App", "AppServer", "Session", "run_app", "serve"]
