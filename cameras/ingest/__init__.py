"""Camera ingestion: read a source, cut it into windows, store each window as a Segment.

- `segmenter`  pure window cutting over timestamped packets and frames (no I/O, no Django)
- `media`      files: remux a window's packets unaltered, make a browser-playable preview
- `reader`     one thread per camera: open, decode at the analysis rate, reconnect with backoff
- `manager`    keeps one reader per enabled camera as the camera table changes
"""
