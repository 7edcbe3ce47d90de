"""Frame sources (files, folders, webcams, RTSP) and sinks (overlay videos, mask files)."""
