"""The files room: one DocumentController per window (path, encoding, read-only, disk watcher, autosave,
recovery) and the dialogs it asks through."""
